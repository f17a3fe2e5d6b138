from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

from api import views

app_name = "api"

router = DefaultRouter()
router.register("teams", views.TeamViewSet, basename="team")
router.register("plans", views.PlanViewSet, basename="plan")
router.register("milestones", views.MilestoneViewSet, basename="milestone")
router.register("deliverables", views.DeliverableViewSet, basename="deliverable")
router.register("criteria", views.CriterionViewSet, basename="criterion")
router.register("risks", views.RiskViewSet, basename="risk")
router.register("blockers", views.BlockerViewSet, basename="blocker")
router.register("dependencies", views.DependencyViewSet, basename="dependency")
router.register("status-updates", views.StatusUpdateViewSet, basename="statusupdate")
router.register("activity", views.ActivityViewSet, basename="activity")
router.register("health", views.HealthViewSet, basename="health")
router.register("signoff-roles", views.SignoffRoleViewSet, basename="signoffrole")
router.register("signoff-decisions", views.SignoffDecisionViewSet, basename="signoffdecision")

preferences = views.NotificationPreferencesViewSet.as_view(
    {"get": "retrieve", "put": "update", "patch": "partial_update"}
)

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("me/notification-preferences/", preferences, name="notification-preferences"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api:schema"), name="docs"),
    path("", include(router.urls)),
    re_path(r"^", views.not_found),  # JSON, not the HTML 404 page, anywhere under /api/v1/
]
