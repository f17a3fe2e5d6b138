from django.urls import path

from specs import api, views

app_name = "specs"

urlpatterns = [
    path("t/<slug:team>/import/", views.import_page, name="import"),
    path("t/<slug:team>/import/<uuid:upload>/", views.import_preview, name="import_preview"),
    path("t/<slug:team>/m/<str:key>/spec/", views.milestone_spec, name="milestone_spec"),
    path("t/<slug:team>/m/<str:key>/export.md", views.milestone_export, name="milestone_export"),
    path("t/<slug:team>/plans/<str:key>/export.md", views.plan_export, name="plan_export"),
    # The API's spec endpoints (DRF, same authentication and permissions as api/).
    path("api/v1/specs/import/", api.SpecImportView.as_view(), name="api_import"),
    path("api/v1/specs/check/", api.SpecCheckView.as_view(), name="api_check"),
    path(
        "api/v1/specs/milestones/<int:pk>/export/",
        api.MilestoneExportView.as_view(),
        name="api_milestone_export",
    ),
    path(
        "api/v1/specs/milestones/<int:pk>/check/",
        api.MilestoneCheckView.as_view(),
        name="api_milestone_check",
    ),
    path(
        "api/v1/specs/plans/<int:pk>/export/", api.PlanExportView.as_view(), name="api_plan_export"
    ),
]
