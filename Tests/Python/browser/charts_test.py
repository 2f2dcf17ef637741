#!/usr/bin/env python3
"""The dashboard's per-minute queue charts in a real browser (headless Chromium, Selenium).

Started by DashboardBrowserTests.testChartsMatchTheCountsInRedis after a scripted burst. Besides
the environment of dashboard_test.py (OOPS_BASE_URL, OOPS_ADMIN_EMAIL, OOPS_ADMIN_PASSWORD,
OOPS_SCREENSHOT_DIR, CHROMIUM_BIN, CHROMEDRIVER_BIN) it reads OOPS_EXPECTED_CHARTS: JSON
{queue: {"completed": [...], "failed": [...]}}, per minute, newest first, as read from Redis.
It saves charts.png. Exit status 0 when every check passed.
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dashboard_test as dt  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions as EC  # noqa: E402

EXPECTED = json.loads(os.environ.get("OOPS_EXPECTED_CHARTS", "{}"))


def run(d):
    os.makedirs(dt.SHOTS, exist_ok=True)
    dt.sign_in(d, *dt.ADMIN)
    dt.wait(d, EC.presence_of_element_located((By.CSS_SELECTOR, "svg[data-chart]")))
    for queue, want in EXPECTED.items():
        svg = d.find_elements(By.CSS_SELECTOR, f"svg[data-chart='{queue}']")
        if not dt.check(len(svg) == 1, f"{queue}: one chart"):
            continue
        cols = svg[0].find_elements(By.CSS_SELECTOR, "g[data-minute]")
        dt.check(len(cols) == 60, f"{queue}: 60 minutes drawn ({len(cols)})")
        got = {"completed": [0] * 60, "failed": [0] * 60}
        for g in cols:
            i = int(g.get_attribute("data-minute"))
            got["completed"][i] = int(g.get_attribute("data-completed"))
            got["failed"][i] = int(g.get_attribute("data-failed"))
        for kind in ("completed", "failed"):
            expect = (want[kind] + [0] * 60)[:60]
            dt.check(got[kind] == expect, f"{queue}: {kind} per minute as in Redis ({sum(got[kind])} in all)")
        bars = svg[0].find_elements(By.CSS_SELECTOR, "rect")
        drawn = sum(1 for k in ("completed", "failed") for n in got[k] if n > 0)
        dt.check(len(bars) == drawn, f"{queue}: one bar per non-empty minute and kind ({len(bars)})")
        dt.check(all(b.size["height"] > 0 and b.size["width"] > 0 for b in bars), f"{queue}: the bars are rendered")
    dt.check(not d.execute_script("return document.querySelectorAll('script:not([src])').length"), "no inline script")
    dt.screenshot(d, "charts.png")


def main():
    d = dt.browser()
    try:
        run(d)
    except Exception as e:
        dt.check(False, f"{type(e).__name__}: {e}")
    finally:
        d.quit()
    print(f"{dt.passed} passed, {dt.failed} failed")
    return 0 if dt.failed == 0 and dt.passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
