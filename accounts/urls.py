"""API routes of the accounts app, mounted under /api/v1/ by ddsite/urls.py."""

from django.urls import path

from accounts import api
from accounts.api import announcements, support, twofactor

urlpatterns = [
    path("auth/login", api.LoginApi.as_view(), name="auth-login"),
    path("auth/2fa", api.TwoFactorApi.as_view(), name="auth-2fa"),
    path("auth/2fa/resend", api.CodeResendApi.as_view(), name="auth-2fa-resend"),
    path("auth/refresh", api.RefreshApi.as_view(), name="auth-refresh"),
    path("auth/logout", api.LogoutApi.as_view(), name="auth-logout"),
    path("auth/register", api.RegisterApi.as_view(), name="auth-register"),
    path("auth/password-reset", api.PasswordResetApi.as_view(), name="auth-password-reset"),
    path("auth/password-reset/confirm", api.PasswordResetConfirmApi.as_view(),
         name="auth-password-reset-confirm"),
    path("me", api.MeApi.as_view(), name="me"),
    path("me/password", api.PasswordChangeApi.as_view(), name="me-password"),
    path("me/delete-request", api.SelfDeleteRequestApi.as_view(), name="me-delete-request"),
    path("me/delete", api.SelfDeleteApi.as_view(), name="me-delete"),
    path("invites", api.InviteCreateApi.as_view(), name="invite-create"),
    path("users", api.UserListApi.as_view(), name="user-list"),
    path("units", api.UnitListApi.as_view(), name="unit-list"),
    path("users/<str:username>/access-fix", api.AccessFixApi.as_view(), name="user-access-fix"),
    path("users/<str:username>/deactivate", api.UserDeactivateApi.as_view(),
         name="user-deactivate"),
    path("users/<str:username>/reactivate", api.UserReactivateApi.as_view(),
         name="user-reactivate"),
    path("users/<str:username>", api.UserDeleteApi.as_view(), name="user-delete"),
]

# Each API module of accounts.api beyond the core one keeps its own routes.
urlpatterns += announcements.urlpatterns + support.urlpatterns + twofactor.urlpatterns
