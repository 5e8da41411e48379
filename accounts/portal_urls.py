"""Portal pages of the accounts app, mounted under /accounts/ by ddsite/urls.py."""

from django.urls import path

from accounts import portal

app_name = "accounts"

urlpatterns = [
    path("login/", portal.login_view, name="login"),
    path("login/code/", portal.login_code_view, name="login-code"),
    path("logout/", portal.logout_view, name="logout"),
    path("register/", portal.register_view, name="register"),
    path("password/reset/", portal.password_reset_view, name="password-reset"),
    path("reset/<str:uid>/<str:token>/", portal.password_reset_confirm_view,
         name="password-reset-confirm"),
    path("password/change/", portal.password_change_view, name="password-change"),
    path("", portal.account_view, name="account"),
    path("agreement/", portal.agreement_view, name="agreement"),
    path("totp/setup/", portal.totp_setup_view, name="totp-setup"),
    path("totp/confirm/", portal.totp_confirm_view, name="totp-confirm"),
    path("totp/disable/", portal.totp_disable_request_view, name="totp-disable-request"),
    path("totp/disable/<str:token>/", portal.totp_disable_view, name="totp-disable"),
    path("delete/", portal.delete_request_view, name="delete-request"),
    path("delete/<str:token>/", portal.delete_view, name="delete"),
]
