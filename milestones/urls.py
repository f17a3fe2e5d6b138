from django.urls import include, path

from accounts import team_settings
from milestones.views import dashboard, milestone, plans, signoffs, timeline

team_patterns = [
    path("", dashboard.dashboard, name="dashboard"),
    path("timeline/", timeline.timeline_page, name="timeline"),
    path("members/", include("accounts.member_urls")),
    path("settings/", team_settings.team_settings, name="team_settings"),
    # Plans
    path("plans/new/", plans.plan_create, name="plan_create"),
    path("plans/<str:key>/", plans.plan_page, name="plan"),
    path("plans/<str:key>/section/<slug:section>/", plans.plan_section, name="plan_section"),
    path("plans/<str:key>/archive/", plans.plan_archive, name="plan_archive"),
    path("plans/<str:key>/delete/", plans.plan_delete, name="plan_delete"),
    path("plans/<str:key>/move/<str:milestone_key>/", plans.milestone_move, name="milestone_move"),
    path("plans/<str:key>/<slug:kind>/add/", plans.plan_item_add, name="plan_item_add"),
    path(
        "plans/<str:key>/<slug:kind>/<int:pk>/<slug:action>/",
        plans.plan_item,
        name="plan_item",
    ),
    # Milestones
    path("milestones/new/", milestone.milestone_create, name="milestone_create"),
    path("m/<str:key>/", milestone.milestone_page, name="milestone"),
    path("m/<str:key>/section/<slug:section>/", milestone.section, name="milestone_section"),
    path("m/<str:key>/delete/", milestone.milestone_delete, name="milestone_delete"),
    path("m/<str:key>/search/", milestone.dependency_search, name="dependency_search"),
    # Sign-offs (before the generic item routes, which would otherwise match them)
    path("m/<str:key>/signoffs/receipt.md", signoffs.receipt, name="signoff_receipt"),
    path("m/<str:key>/signoffs/roles/add/", signoffs.role_add, name="signoff_role_add"),
    path("m/<str:key>/signoffs/<int:pk>/decide/", signoffs.decide, name="signoff_decide"),
    path("m/<str:key>/signoffs/<int:pk>/holder/", signoffs.holder, name="signoff_holder"),
    path("m/<str:key>/signoffs/<int:pk>/drop/", signoffs.role_drop, name="signoff_role_drop"),
    path("m/<str:key>/<slug:kind>/add/", milestone.item_add, name="milestone_item_add"),
    path("m/<str:key>/<slug:kind>/<int:pk>/<slug:action>/", milestone.item, name="milestone_item"),
]

urlpatterns = [
    path("", dashboard.home, name="home"),
    path("signoffs/", signoffs.my_signoffs, name="my_signoffs"),
    path("t/<slug:team>/", include(team_patterns)),
]
