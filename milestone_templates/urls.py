from django.urls import path

from milestone_templates import views

app_name = "milestone_templates"

urlpatterns = [
    path("t/<slug:team>/templates/", views.template_list, name="list"),
    path("t/<slug:team>/templates/plan/", views.build_plan, name="build_plan"),
    path("t/<slug:team>/templates/save/<str:key>/", views.template_save, name="save"),
    path("t/<slug:team>/templates/<int:pk>/edit/", views.template_edit, name="edit"),
    path("t/<slug:team>/templates/<int:pk>/delete/", views.template_delete, name="delete"),
    path("t/<slug:team>/templates/<slug:ref>/", views.template_detail, name="detail"),
    path("t/<slug:team>/templates/<slug:ref>/use/", views.template_use, name="use"),
]
