from django.urls import path
from drafts import views

urlpatterns = [
    path("drafts/<str:draft_id>/writer", views.start_writer),
    path("flows/<str:flow_id>/approval", views.approve),
    path("flows/<str:flow_id>", views.show_flow),
]
