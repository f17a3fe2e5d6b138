"""The tokens page (/tokens/): list, create (the secret is shown once) and revoke."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from api.forms import TokenForm
from api.models import ApiToken

TEMPLATE = "api/tokens.html"


def _context(request, form, **extra):
    return {
        "form": form,
        "tokens": list(ApiToken.objects.filter(user=request.user)),
        "nav": "tokens",
        **extra,
    }


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def tokens(request):
    if request.method == "POST":
        form = TokenForm(request.POST)
        if form.is_valid():
            token, secret = ApiToken.objects.create_token(
                request.user,
                form.cleaned_data["name"],
                expires_days=form.cleaned_data["expires_in"],
            )
            # Shown in this response only; never stored, never put in a redirect or a message.
            context = _context(request, TokenForm(), new_token=token, secret=secret)
            return render(request, TEMPLATE, context, status=201)
        return render(request, TEMPLATE, _context(request, form), status=400)
    return render(request, TEMPLATE, _context(request, TokenForm()))


@login_required
@require_http_methods(["GET", "POST"])
def revoke(request, pk):
    token = get_object_or_404(ApiToken, pk=pk, user=request.user)
    if request.method == "POST":
        if token.revoke():
            messages.success(request, f"Revoked “{token.name}”: it no longer works.")
        return redirect("api_pages:tokens")
    return render(request, "api/token_revoke.html", {"token": token, "nav": "tokens"})
