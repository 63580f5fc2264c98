"""The OAuth pages in a real browser: Debian's headless chromium driven by selenium through
chromedriver (installed by ``make install-test``), against the live server of
test_oauth_live.py. A public client completes the code+PKCE flow (login, consent, redirect) and
the device flow (verification page, login, approve), and the tokens work on the REST API."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from authlib.common.security import generate_token

from tests.live.test_oauth_live import (
    DEVICE,
    PASSWORD,
    OAuthLive,
    live_oauth,
    ready_to_poll,
    start_device,
)

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")

pytestmark = pytest.mark.skipif(
    not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
    reason="chromium and chromium-driver are not installed (make install-test installs them)",
)
__all__ = ["live_oauth"]  # the live server fixture, shared with test_oauth_live.py


@pytest.fixture
def browser() -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def _sign_in(driver: Any, username: str) -> None:
    from selenium.webdriver.common.by import By

    driver.find_element(By.ID, "username").send_keys(username)
    driver.find_element(By.ID, "password").send_keys(PASSWORD)
    driver.find_element(By.ID, "sign-in").click()


def test_code_flow_in_a_browser(live_oauth: OAuthLive, browser: Any) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    callback = f"{live_oauth.origin}/callback"  # a loopback URI; its 404 page is fine
    name = "Browser <b>App</b>"
    client_id = live_oauth.client_id(client_name=name, redirect_uris=[callback])
    username, user_id = live_oauth.user()
    client = live_oauth.oauth_client(
        client_id, redirect_uri=callback, scope="read:pets read:user", code_challenge_method="S256"
    )
    verifier = generate_token(48)
    url, state = client.create_authorization_url(
        f"{live_oauth.origin}/oauth/authorize", code_verifier=verifier
    )
    driver = browser
    driver.get(url)
    assert driver.find_element(By.ID, "client-name").text == name
    _sign_in(driver, username)
    WebDriverWait(driver, 30).until(lambda d: d.find_elements(By.ID, "consent"))
    words = [li.text for li in driver.find_elements(By.CSS_SELECTOR, "li[data-scope]")]
    assert words == [
        "See the pets in the catalogue (read:pets)",
        "See your account (read:user)",
    ]
    driver.find_element(By.ID, "allow").click()
    WebDriverWait(driver, 30).until(lambda d: d.current_url.startswith(callback))
    query = parse_qs(urlsplit(driver.current_url).query)
    assert query["state"] == [state]
    token = client.fetch_token(
        f"{live_oauth.origin}/oauth/token",
        authorization_response=driver.current_url,
        code_verifier=verifier,
    )
    bearer = {"Authorization": f"Bearer {token['access_token']}"}
    assert httpx.get(f"{live_oauth.api.base}/users/{user_id}", headers=bearer).status_code == 200


def test_device_flow_in_a_browser(live_oauth: OAuthLive, browser: Any) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    client_id = live_oauth.client_id(client_name="Living-room TV")
    username, _ = live_oauth.user()
    started = start_device(live_oauth, client_id)
    driver = browser
    driver.get(started["verification_uri_complete"])
    field = driver.find_element(By.ID, "user_code")
    assert field.get_attribute("value") == started["user_code"]
    driver.find_element(By.ID, "continue").click()
    WebDriverWait(driver, 30).until(lambda d: d.find_elements(By.ID, "username"))
    assert driver.find_element(By.ID, "client-name").text == "Living-room TV"
    _sign_in(driver, username)
    WebDriverWait(driver, 30).until(lambda d: d.find_elements(By.ID, "approve"))
    shown = driver.find_element(By.ID, "shown-code").text
    assert shown == started["user_code"]
    driver.find_element(By.ID, "approve").click()
    WebDriverWait(driver, 30).until(lambda d: d.find_elements(By.ID, "done"))
    ready_to_poll(live_oauth, started["device_code"])
    token = live_oauth.oauth_client(client_id).fetch_token(
        f"{live_oauth.origin}/oauth/token", grant_type=DEVICE, device_code=started["device_code"]
    )
    bearer = {"Authorization": f"Bearer {token['access_token']}"}
    assert httpx.get(f"{live_oauth.api.base}/pets", headers=bearer).status_code == 200
