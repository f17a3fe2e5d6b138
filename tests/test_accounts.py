import re

from django.urls import reverse

from tests.factories import PASSWORD


def test_it_logs_in_with_the_email_address(world, client):
    response = client.post(
        reverse("accounts:login"), {"username": "MAX@example.com", "password": PASSWORD}
    )
    assert response.status_code == 302
    assert client.get("/").status_code == 302  # on to the dashboard, so logged in


def test_it_refuses_a_wrong_password_with_a_message(world, client):
    response = client.post(reverse("accounts:login"), {"username": "max", "password": "nope"})
    assert response.status_code == 200
    assert "do not match an account" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_logging_out_needs_a_post(world, client_for):
    client = client_for(world.member)
    assert client.get(reverse("accounts:logout")).status_code == 405
    assert client.post(reverse("accounts:logout")).status_code == 302
    assert "_auth_user_id" not in client.session


def test_changing_the_password(world, client_for):
    client = client_for(world.member)
    response = client.post(
        reverse("accounts:password_change"),
        {
            "old_password": PASSWORD,
            "new_password1": "a much longer new secret",
            "new_password2": "a much longer new secret",
        },
    )
    assert response.status_code == 302
    world.member.refresh_from_db()
    assert world.member.check_password("a much longer new secret")


def test_changing_the_password_shows_field_errors(world, client_for):
    response = client_for(world.member).post(
        reverse("accounts:password_change"),
        {"old_password": "wrong", "new_password1": "x", "new_password2": "y"},
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert "Your old password was entered incorrectly" in page
    world.member.refresh_from_db()
    assert world.member.check_password(PASSWORD)


def test_a_password_reset_mail_carries_a_working_link(world, client, mailoutbox, settings):
    settings.SITE_URL = "https://milepost.example"
    response = client.post(reverse("accounts:password_reset"), {"email": "MAX@example.com"})
    assert response.status_code == 302
    assert len(mailoutbox) == 1
    message = mailoutbox[0]
    assert message.to == ["max@example.com"]
    assert message.subject == "Reset your Milepost password"
    link = re.search(r"https://milepost\.example(/accounts/password/reset/\S+)", message.body)
    assert link, message.body
    form_page = client.get(link.group(1), follow=True)
    assert "Choose a new password" in form_page.content.decode()
    done = client.post(
        form_page.redirect_chain[-1][0],
        {"new_password1": "brand new passphrase", "new_password2": "brand new passphrase"},
    )
    assert done.status_code == 302
    world.member.refresh_from_db()
    assert world.member.check_password("brand new passphrase")


def test_a_reset_for_an_unknown_address_sends_nothing_but_looks_the_same(db, client, mailoutbox):
    response = client.post(reverse("accounts:password_reset"), {"email": "nobody@example.com"})
    assert response.status_code == 302
    assert mailoutbox == []
