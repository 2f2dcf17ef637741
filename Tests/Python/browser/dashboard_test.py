#!/usr/bin/env python3
"""The queue dashboard in a real browser: headless Chromium (Debian's chromium and
chromium-driver) driven by Selenium.

Started by Tests/SystemTests/DashboardBrowserTests.swift against a running OOPS system; it
can also be run by hand against any system. Environment:

  OOPS_BASE_URL           e.g. http://127.0.0.1:8080
  OOPS_ADMIN_EMAIL        admin credentials for the sign-in form
  OOPS_ADMIN_PASSWORD
  OOPS_MERCHANT_EMAIL     a merchant, who must be refused
  OOPS_MERCHANT_PASSWORD
  OOPS_FAILED_QUEUE       queue and id of a failed job to open and retry
  OOPS_FAILED_JOB_ID
  OOPS_SCREENSHOT_DIR     where screenshots go (default /tmp/oops-screenshots)
  CHROMIUM_BIN, CHROMEDRIVER_BIN   default /usr/bin/chromium, /usr/bin/chromedriver

Exit status 0 when every check passed; the last line says how many passed and failed.
"""
import json
import os
import sys
import time
import urllib.request

# Selenium must use the Debian driver and never try to download one.
os.environ.setdefault("SE_OFFLINE", "true")

from selenium import webdriver  # noqa: E402
from selenium.common.exceptions import TimeoutException, NoAlertPresentException  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions as EC  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

BASE = os.environ.get("OOPS_BASE_URL", "http://127.0.0.1:8080").rstrip("/")
ADMIN = (os.environ.get("OOPS_ADMIN_EMAIL", ""), os.environ.get("OOPS_ADMIN_PASSWORD", ""))
MERCHANT = (os.environ.get("OOPS_MERCHANT_EMAIL", ""), os.environ.get("OOPS_MERCHANT_PASSWORD", ""))
QUEUE = os.environ.get("OOPS_FAILED_QUEUE", "parcelx-orders-queue")
JOB_ID = os.environ.get("OOPS_FAILED_JOB_ID", "")
SHOTS = os.environ.get("OOPS_SCREENSHOT_DIR", "/tmp/oops-screenshots")
STATES = ["waiting", "active", "delayed", "prioritized", "completed", "failed", "paused"]

passed = 0
failed = 0


def check(cond, what):
    global passed, failed
    if cond:
        passed += 1
        print(f"ok - {what}", flush=True)
    else:
        failed += 1
        print(f"FAIL - {what}", flush=True)
    return cond


def api(path, token=None, body=None):
    """A JSON call to the Gateway, for the numbers the page must agree with."""
    req = urllib.request.Request(BASE + path, method="POST" if body is not None else "GET")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, data, timeout=10) as r:
        return json.loads(r.read().decode())


def browser():
    opts = webdriver.ChromeOptions()
    opts.binary_location = os.environ.get("CHROMIUM_BIN", "/usr/bin/chromium")
    for a in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--window-size=1366,1000", "--no-first-run", "--disable-extensions", "--lang=en-US"]:
        opts.add_argument(a)
    service = Service(executable_path=os.environ.get("CHROMEDRIVER_BIN", "/usr/bin/chromedriver"))
    d = webdriver.Chrome(service=service, options=opts)
    d.set_page_load_timeout(20)
    return d


def wait(d, cond, timeout=10):
    return WebDriverWait(d, timeout, poll_frequency=0.1).until(cond)


def sign_in(d, email, password):
    d.get(BASE + "/admin/login")
    wait(d, EC.presence_of_element_located((By.ID, "email")))
    d.find_element(By.ID, "email").send_keys(email)
    d.find_element(By.ID, "password").send_keys(password)
    d.find_element(By.CSS_SELECTOR, "form[action='/admin/login'] button[type=submit]").click()


def page_counts(d):
    out = {}
    for el in d.find_elements(By.CSS_SELECTOR, "[data-count]"):
        out[el.get_attribute("data-count")] = int(el.text)
    return out


def api_counts(token):
    ov = api("/admin/queues/api/overview", token)
    return {f"{q['name']}:{s}": q["counts"][s] for q in ov["queues"] for s in STATES}


def screenshot(d, name):
    """The whole page, not just the window: grow the window to the document, then restore it."""
    w, h = d.get_window_size()["width"], d.get_window_size()["height"]
    full = d.execute_script("return Math.max(document.body.scrollHeight, document.documentElement.scrollHeight)")
    d.set_window_size(w, max(h, min(full + 20, 4000)))
    d.save_screenshot(os.path.join(SHOTS, name))
    d.set_window_size(w, h)


def run(d):
    os.makedirs(SHOTS, exist_ok=True)
    token = api("/auth/login", body={"email": ADMIN[0], "password": ADMIN[1]})["accessToken"]

    # An anonymous visitor is sent to the sign-in page.
    d.get(BASE + "/admin/queues")
    wait(d, EC.url_contains("/admin/login"))
    check("/admin/login?next=" in d.current_url, "anonymous visitor is sent to sign in")
    check(not d.find_elements(By.CSS_SELECTOR, "[data-count]"), "anonymous visitor sees no counts")

    # A merchant with a correct password is refused and gets no session.
    sign_in(d, *MERCHANT)
    wait(d, EC.text_to_be_present_in_element((By.CSS_SELECTOR, ".flash"), "administrators"))
    screenshot(d, "login-refused.png")
    check(d.get_cookie("oops_admin_session") is None, "merchant gets no session cookie")
    d.get(BASE + "/admin/queues")
    wait(d, EC.url_contains("/admin/login"))
    check(not d.find_elements(By.CSS_SELECTOR, "[data-count]"), "merchant sees no queue data")

    # The admin signs in with the form and lands on the overview.
    sign_in(d, *ADMIN)
    wait(d, EC.presence_of_element_located((By.CSS_SELECTOR, "[data-count]")))
    check(d.current_url.rstrip("/").endswith("/admin/queues"), "admin lands on the overview")
    c = d.get_cookie("oops_admin_session") or {}
    check(c.get("httpOnly") is True and c.get("sameSite") == "Strict" and c.get("path") == "/admin",
          f"session cookie is HttpOnly, SameSite=Strict, Path=/admin ({ {k: c.get(k) for k in ('httpOnly', 'sameSite', 'path')} })")
    check(d.execute_script("return document.cookie.indexOf('oops_admin_session') === -1"), "scripts cannot read the session")

    # Counts on the page agree with the API (Redis); polling keeps them fresh, so compare a
    # stable moment: the same numbers in two API reads around one page read.
    agreed = False
    for _ in range(30):
        before = api_counts(token)
        shown = page_counts(d)
        after = api_counts(token)
        if before == after and shown == before:
            agreed = True
            break
        time.sleep(0.5)
    check(agreed, f"counts on the page match the API: page={page_counts(d)} api={api_counts(token)}")
    check(len(shown) == 21, "the three queues with seven states each are shown")
    wait(d, lambda x: x.find_element(By.CSS_SELECTOR, "[data-updated]").text.startswith("updated "))
    screenshot(d, "overview.png")

    # From the failed tile to the list to the job.
    d.find_element(By.CSS_SELECTOR, f"a.s-failed[href='/admin/queues/{QUEUE}/failed']").click()
    wait(d, EC.url_contains(f"/admin/queues/{QUEUE}/failed"))
    screenshot(d, "failed-list.png")
    d.find_element(By.CSS_SELECTOR, f"table.jobs a[href='/admin/queues/{QUEUE}/jobs/{JOB_ID}']").click()
    wait(d, EC.presence_of_element_located((By.CSS_SELECTOR, "[data-job-state]")))
    state = d.find_element(By.CSS_SELECTOR, "[data-job-state]")
    check(state.text.lower() == "failed", f"the job page shows the failed state ({state.text})")
    reason = d.find_element(By.CSS_SELECTOR, "[data-failed-reason]").text
    check(reason.strip() != "", f"the failure reason is shown ({reason[:80]!r})")
    consignee = d.find_elements(By.CSS_SELECTOR, "[data-order-consignee]")
    check(consignee and "<script>" in consignee[0].text, "markup in the consignee name is shown as text")
    check(d.execute_script("return typeof window.__oopsXSS") == "undefined", "and never run")
    link = d.find_element(By.CSS_SELECTOR, "a[data-provider-logs]").get_attribute("href")
    check(link.startswith(BASE + "/admin/orders/") and link.endswith("/provider-logs"), "the job links to its order's provider logs")
    screenshot(d, "job-failed.png")
    attempts_before = int(d.find_element(By.CSS_SELECTOR, "[data-job-attempts]").text)

    # Retry: confirm, POST with the CSRF token, redirect back, then watch the state change.
    d.find_element(By.CSS_SELECTOR, f"form[action$='/jobs/{JOB_ID}/retry'] button").click()
    alert = wait(d, EC.alert_is_present())
    check("Retry job" in alert.text, f"the action asks for confirmation ({alert.text!r})")
    alert.accept()
    wait(d, EC.text_to_be_present_in_element((By.CSS_SELECTOR, ".flash"), "queued again"))
    check("done=retried" in d.current_url, "POST-redirect-GET back to the job")

    def moved_on(x):
        try:
            el = x.find_element(By.CSS_SELECTOR, "[data-job-state]")
            return el.get_attribute("data-job-state") != "failed" and \
                int(x.find_element(By.CSS_SELECTOR, "[data-job-attempts]").text) > attempts_before
        except Exception:
            return False
    try:
        wait(d, moved_on, timeout=20)
        check(True, "the page follows the retried job to its new state "
              f"({d.find_element(By.CSS_SELECTOR, '[data-job-state]').text})")
    except TimeoutException:
        check(False, "the page follows the retried job to its new state")
    screenshot(d, "job-after-retry.png")

    # The order's provider calls, readable with the browser session.
    order_id = link.rstrip("/").split("/")[-2]
    d.get(f"{BASE}/admin/queues/orders/{order_id}/provider-logs")
    wait(d, EC.presence_of_element_located((By.TAG_NAME, "h1")))
    check("Provider calls of order" in d.find_element(By.TAG_NAME, "h1").text, "the session can read the order's provider calls")
    screenshot(d, "provider-logs.png")

    # Declining the confirmation sends nothing.
    d.get(BASE + "/admin/queues")
    wait(d, EC.presence_of_element_located((By.CSS_SELECTOR, "[data-count]")))
    def paused():
        return next(q["paused"] for q in api("/admin/queues/api/overview", token)["queues"] if q["name"] == QUEUE)
    paused_before = paused()
    d.find_element(By.CSS_SELECTOR, f"form[action='/admin/queues/{QUEUE}/actions/pause'] button").click()
    wait(d, EC.alert_is_present()).dismiss()
    time.sleep(0.5)
    check(paused() == paused_before, "a dismissed confirmation changes nothing")

    # Sign out.
    d.find_element(By.CSS_SELECTOR, "form[action='/admin/logout'] button").click()
    wait(d, EC.url_contains("/admin/login"))
    check(d.get_cookie("oops_admin_session") is None, "signing out clears the session")
    d.get(BASE + "/admin/queues")
    wait(d, EC.url_contains("/admin/login"))
    check(True, "after signing out the dashboard asks to sign in again")


def main():
    d = browser()
    try:
        run(d)
    except Exception as e:  # a step that could not even run is a failure with its reason
        check(False, f"{type(e).__name__}: {e}")
        try:
            d.save_screenshot(os.path.join(SHOTS, "failure.png"))
            print("page at failure:", d.current_url, file=sys.stderr)
        except Exception:
            pass
    finally:
        try:
            d.switch_to.alert.dismiss()
        except (NoAlertPresentException, Exception):
            pass
        d.quit()
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 and passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
