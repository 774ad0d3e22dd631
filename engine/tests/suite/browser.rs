//! Every committed report's `index.html` opened in a real browser (headless Chromium, as
//! Debian packages it) at 1280 px: no console or load error, every figure drawn with a size,
//! no horizontal scroll, no element whose content overflows its box.
//!
//! The page is copied to a temp dir with two scripts added (the report itself has none): one
//! first in `<head>` that records errors, one last in `<body>` that measures the laid-out page
//! and writes its findings into the DOM, which `--dump-dom` prints once loading is done.
//! Without Chromium the test says so loudly and passes, unless `ARCHSIM_REQUIRE_CHROMIUM=1`
//! (set by `.ci/run`) makes it required.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

const BROWSERS: [&str; 3] = ["chromium", "chromium-browser", "google-chrome"];

/// The page width the check lays pages out at, CSS pixels.
const WIDTH_PX: u32 = 1280;

/// Records every error before the page's own content loads.
const RECORD_ERRORS: &str = r#"<script>
window.__errors = [];
const __error = console.error;
console.error = function (...args) { window.__errors.push(args.join(' ')); __error(...args); };
window.addEventListener('error', e => window.__errors.push(
  e.message || ('cannot load ' + ((e.target && (e.target.src || e.target.href)) || '?'))), true);
</script>"#;

/// Once the page and everything it loads are in, measures the page and writes what it found
/// as JSON into `#archsim-check`.
const MEASURE: &str = r#"<script>
window.addEventListener('load', () => {
const out = {errors: window.__errors, figures: 0, empty: [], scroll_width: 0, overflow: []};
for (const svg of document.querySelectorAll('figure > svg')) {
  out.figures += 1;
  const r = svg.getBoundingClientRect();
  if (!(r.width > 0 && r.height > 0)) out.empty.push(svg.parentElement.id || '?');
}
out.scroll_width = document.documentElement.scrollWidth;
for (const el of document.body.querySelectorAll('*')) {
  if (el.closest('svg') || el.tagName === 'SCRIPT') continue;
  const style = getComputedStyle(el);
  const scrolls = ['auto', 'scroll'].includes(style.overflowX);
  if (!scrolls && el.scrollWidth > el.clientWidth + 1 && style.display !== 'inline') {
    out.overflow.push(el.tagName + (el.id ? '#' + el.id : '') + ': ' + (el.textContent || '').slice(0, 60));
  }
}
const pre = document.createElement('pre');
pre.id = 'archsim-check';
pre.textContent = JSON.stringify(out);
document.body.appendChild(pre);
});
</script>"#;

fn say(message: &str) {
    let _ = writeln!(std::io::stderr(), "browser test: {message}");
}

fn find_browser() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .flat_map(|d| BROWSERS.map(|b| d.join(b)))
        .find(|p| p.is_file())
}

/// Chromium's flags for a headless run on a machine without network or display.
fn headless(browser: &Path, profile: &Path) -> Command {
    let mut c = Command::new(browser);
    c.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        &format!("--window-size={WIDTH_PX},1000"),
    ])
    .arg(format!("--user-data-dir={}", profile.display()));
    c
}

/// What the measuring script found on one page.
#[derive(serde::Deserialize, Debug)]
struct Check {
    errors: Vec<String>,
    figures: usize,
    empty: Vec<String>,
    scroll_width: u32,
    overflow: Vec<String>,
}

/// The page at `html` with the two scripts added, opened in the browser; what it measured.
fn check_page(browser: &Path, html: &Path, scratch: &Path) -> Result<Check, String> {
    let page = std::fs::read_to_string(html).map_err(|e| e.to_string())?;
    let page = page
        .replacen("<head>", &format!("<head>\n{RECORD_ERRORS}"), 1)
        .replacen("</body>", &format!("{MEASURE}\n</body>"), 1);
    let copy = scratch.join("index.html");
    std::fs::write(&copy, page).map_err(|e| e.to_string())?;
    let profile = scratch.join("profile");
    let output = headless(browser, &profile)
        .args(["--dump-dom", "--virtual-time-budget=5000"])
        .arg(format!("file://{}", copy.display()))
        .output()
        .map_err(|e| format!("cannot start {}: {e}", browser.display()))?;
    let dom = String::from_utf8_lossy(&output.stdout);
    let json = dom
        .split("<pre id=\"archsim-check\">")
        .nth(1)
        .and_then(|rest| rest.split("</pre>").next())
        .ok_or_else(|| {
            format!(
                "no result in the DOM; stderr: {}",
                String::from_utf8_lossy(&output.stderr)
            )
        })?;
    let json = json
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&");
    serde_json::from_str(&json).map_err(|e| format!("{e}: {json}"))
}

fn problems(check: &Check) -> Vec<String> {
    let mut out: Vec<String> = check
        .errors
        .iter()
        .map(|e| format!("console error: {e}"))
        .collect();
    if check.figures == 0 {
        out.push("no figure".to_string());
    }
    out.extend(
        check
            .empty
            .iter()
            .map(|f| format!("figure {f} has no size")),
    );
    if check.scroll_width > WIDTH_PX {
        out.push(format!(
            "scrolls sideways: {} px wide at {WIDTH_PX}",
            check.scroll_width
        ));
    }
    out.extend(
        check
            .overflow
            .iter()
            .map(|o| format!("overflows its box: {o}")),
    );
    out
}

fn committed_pages() -> Vec<PathBuf> {
    let dir = super::repo_root().join("reports");
    let mut pages: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("reports/")
        .map(|e| e.expect("entry").path().join("index.html"))
        .filter(|p| p.is_file())
        .collect();
    pages.sort();
    pages
}

#[test]
fn every_committed_report_reads_cleanly_in_chromium() {
    let required = std::env::var("ARCHSIM_REQUIRE_CHROMIUM").is_ok_and(|v| v == "1");
    let Some(browser) = find_browser() else {
        assert!(
            !required,
            "ARCHSIM_REQUIRE_CHROMIUM=1 but no Chromium on PATH: apt-get install chromium"
        );
        say(
            "SKIPPED: Chromium is not installed (apt-get install chromium); \
             ARCHSIM_REQUIRE_CHROMIUM=1 makes this test required",
        );
        return;
    };
    let pages = committed_pages();
    assert!(pages.len() >= 15, "{} committed pages", pages.len());
    let mut failures = Vec::new();
    for (i, page) in pages.iter().enumerate() {
        let scratch = super::sweep::temp_dir(&format!("browser-{i}"));
        let name = page
            .parent()
            .and_then(Path::file_name)
            .unwrap_or_default()
            .to_string_lossy();
        match check_page(&browser, page, &scratch) {
            Ok(check) => {
                failures.extend(problems(&check).into_iter().map(|p| format!("{name}: {p}")))
            }
            Err(e) => failures.push(format!("{name}: {e}")),
        }
        let _ = std::fs::remove_dir_all(&scratch);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_browser_check_catches_a_broken_page() {
    let Some(browser) = find_browser() else {
        say("SKIPPED: Chromium is not installed");
        return;
    };
    let scratch = super::sweep::temp_dir("browser-broken");
    let html = scratch.join("broken.html");
    std::fs::write(
        &html,
        "<!DOCTYPE html><html><head></head><body><figure><svg width=\"0\" height=\"0\"></svg>\
         </figure><p style=\"width:100px;white-space:nowrap\">an unbreakable line that is much \
         wider than one hundred pixels</p><div style=\"width:2000px\">wide</div>\
         <img src=\"missing.png\"></body></html>",
    )
    .expect("write");
    let work = scratch.join("work");
    std::fs::create_dir_all(&work).expect("dir");
    let check = check_page(&browser, &html, &work).expect("a result");
    let found = problems(&check).join("\n");
    for expected in [
        "console error",
        "has no size",
        "scrolls sideways",
        "overflows its box: P",
    ] {
        assert!(found.contains(expected), "missed {expected:?} in:\n{found}");
    }
    let _ = std::fs::remove_dir_all(&scratch);
}
