"""The sign-in page: Django's LoginView, throttled per username and client address, every attempt audited."""

import dataclasses

from django.contrib.auth import views as auth_views
from django.http import HttpRequest, HttpResponse

from kvsite.access.audit import Action, audit_actor_from_request, audit_record
from kvsite.access.authentication import principal_for_user
from kvsite.access.logins import login_failure_record, login_refusal, login_success_record

WRONG_CREDENTIALS = "wrong username or password"


def _audit_attempt(request: HttpRequest, *, username: str, reason: str) -> None:
    # The name typed is all that is known of who tried; the password is never recorded.
    actor = dataclasses.replace(audit_actor_from_request(request), name=username)
    audit_record(actor=actor, action=Action.LOGIN, success=False, reason=reason)


class LoginView(auth_views.LoginView):
    """Refuses (429) while a username or address has too many recent failures; counts and audits the rest."""

    template_name = "dashboard/login.html"

    def post(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        username = request.POST.get("username", "")
        refusal = login_refusal(username=username, client_ip=audit_actor_from_request(request).client_ip)
        if refusal is None:
            return super().post(request, *args, **kwargs)
        _audit_attempt(request, username=username, reason=refusal.reason)
        # An unbound form: validating it would ask the password backend, which is what is refused.
        form = self.get_form_class()(request, initial={"username": username})
        response = self.render_to_response(self.get_context_data(form=form, refusal=refusal), status=429)
        response["Retry-After"] = str(refusal.retry_after)
        return response

    def form_valid(self, form) -> HttpResponse:
        response = super().form_valid(form)
        user = form.get_user()
        login_success_record(username=user.get_username())
        audit_record(
            actor=audit_actor_from_request(self.request, principal=principal_for_user(user)), action=Action.LOGIN
        )
        return response

    def form_invalid(self, form) -> HttpResponse:
        username, password = self.request.POST.get("username", ""), self.request.POST.get("password", "")
        if username and password:  # an attempt at a password, not a form sent half empty
            login_failure_record(username=username, client_ip=audit_actor_from_request(self.request).client_ip)
            _audit_attempt(self.request, username=username, reason=WRONG_CREDENTIALS)
        return super().form_invalid(form)
