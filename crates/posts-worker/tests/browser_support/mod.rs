//! A headless Chromium driven through the DevTools protocol (`headless_chrome`), for tests
//! that look at the dashboard the way a person does: pages loaded, scripts run, buttons
//! clicked, screenshots taken. The browser is the one `cargo xtask test` names in
//! [`CHROMIUM_ENV`]; without it the tests fail and say how to get one.
//!
//! Every wait polls the page against a generous deadline: the machine may be shared and
//! busy, and the tests check what the page shows, never how fast.

// Each test file that includes this module uses a different part of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use headless_chrome::protocol::cdp::Emulation::SetDeviceMetricsOverride;
use headless_chrome::protocol::cdp::Page::CaptureScreenshotFormatOption;
use headless_chrome::{Browser, LaunchOptions, Tab};
use serde_json::{Value, json};

/// The variable naming the Chromium (or Chrome) binary; `cargo xtask test` sets it.
pub(crate) const CHROMIUM_ENV: &str = "POSTS_WORKER_CHROMIUM";

/// The desktop viewport the pages are looked at in.
pub(crate) const WIDE: (u32, u32) = (1400, 1000);

/// A phone-sized viewport, for the narrow layout.
pub(crate) const NARROW: (u32, u32) = (420, 900);

/// How long a page gets to show what a test waits for, and the browser to answer one
/// command. Generous: these separate "never happened" from "happened", nothing else.
pub(crate) const PAGE_DEADLINE: Duration = Duration::from_secs(120);

/// The first eight bytes of every PNG file.
const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

/// The Chromium binary from [`CHROMIUM_ENV`]; panics with what to do when it is unset.
pub(crate) fn chromium() -> PathBuf {
    match std::env::var_os(CHROMIUM_ENV) {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => panic!(
            "{CHROMIUM_ENV} is not set. These tests drive the dashboard in a headless \
             Chromium: run them through `cargo xtask test` (it finds Chromium, or installs \
             Debian's `chromium` package with apt-get, and sets {CHROMIUM_ENV}), or set \
             {CHROMIUM_ENV} to a Chromium or Chrome binary (`apt-get install chromium`, \
             then {CHROMIUM_ENV}=/usr/bin/chromium)."
        ),
    }
}

/// Where the screenshots go: `target/dashboard-screenshots/` of the workspace (or of
/// `$CARGO_TARGET_DIR`), kept after the run for people to look at.
pub(crate) fn screenshot_dir() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    // crates/posts-worker, two levels below the workspace root.
    let workspace = manifest_dir.ancestors().nth(2).unwrap_or(manifest_dir);
    let target = match std::env::var_os("CARGO_TARGET_DIR").filter(|dir| !dir.is_empty()) {
        // Cargo reads a relative target dir from where it runs, the workspace here.
        Some(dir) => workspace.join(dir),
        None => workspace.join("target"),
    };
    target.join("dashboard-screenshots")
}

/// One headless Chromium with one tab, closed when dropped.
pub(crate) struct Chromium {
    // Declared first so the tab is dropped before the browser process it belongs to.
    tab: Arc<Tab>,
    _browser: Browser,
}

impl Chromium {
    /// Starts [`chromium`] headless, without its sandbox (the tests may run as root,
    /// where Chromium refuses to sandbox), showing pages in a [`WIDE`] viewport.
    pub(crate) fn launch() -> Chromium {
        let options = LaunchOptions::default_builder()
            .path(Some(chromium()))
            .headless(true)
            .sandbox(false)
            .window_size(Some(WIDE))
            // The tests wait for workers between commands; the browser must not give up.
            .idle_browser_timeout(PAGE_DEADLINE * 5)
            .build()
            .unwrap_or_else(|e| panic!("Chromium launch options: {e}"));
        let browser = Browser::new(options).unwrap_or_else(|e| {
            panic!(
                "Chromium did not start from {} ({CHROMIUM_ENV}): {e}",
                chromium().display()
            )
        });
        browser.set_default_timeout(PAGE_DEADLINE);
        let tab = browser
            .new_tab()
            .unwrap_or_else(|e| panic!("Chromium opened no tab: {e}"));
        tab.set_default_timeout(PAGE_DEADLINE);
        let chromium = Chromium {
            tab,
            _browser: browser,
        };
        chromium.resize(WIDE);
        chromium
    }

    /// Loads `url` and waits until it has loaded.
    pub(crate) fn open(&self, url: &str) {
        self.tab
            .navigate_to(url)
            .and_then(|tab| tab.wait_until_navigated())
            .unwrap_or_else(|e| panic!("loading {url}: {e}"));
    }

    /// The address of the page the tab shows.
    pub(crate) fn url(&self) -> String {
        self.tab.get_url()
    }

    /// Evaluates the JavaScript expression `expression` in the page and returns its value
    /// (through JSON, so `undefined` comes back as null); `Err` with the exception's
    /// description when it threw, or when the page was between documents.
    pub(crate) fn try_eval(&self, expression: &str) -> Result<Value, String> {
        let wrapped = format!("JSON.stringify((() => ({expression}))()) ?? 'null'");
        let result = self
            .tab
            .evaluate(&wrapped, false)
            .map_err(|e| e.to_string())?;
        match result.value {
            Some(Value::String(json)) => serde_json::from_str(&json)
                .map_err(|e| format!("the page returned no JSON ({e}): {json}")),
            _ => Err(result
                .description
                .unwrap_or_else(|| format!("{:?}", result.Type))),
        }
    }

    /// [`try_eval`](Self::try_eval); panics when the expression threw.
    pub(crate) fn eval(&self, expression: &str) -> Value {
        self.try_eval(expression)
            .unwrap_or_else(|e| panic!("{expression} on {}: {e}", self.url()))
    }

    /// Polls `expression` on the current page until it is truthy (not null, false, 0,
    /// empty) and returns that value; panics after [`PAGE_DEADLINE`] saying `what`.
    pub(crate) fn wait_until(&self, what: &str, expression: &str) -> Value {
        self.poll(what, expression, || {})
    }

    /// Loads `url` again and again until `expression` is truthy on it; returns the value.
    /// For data that reaches the dashboard after the page was first loaded, without
    /// depending on the page's own refresh.
    pub(crate) fn open_until(&self, url: &str, what: &str, expression: &str) -> Value {
        self.open(url);
        self.poll(what, expression, || self.open(url))
    }

    fn poll(&self, what: &str, expression: &str, between: impl Fn()) -> Value {
        let deadline = Instant::now() + PAGE_DEADLINE;
        loop {
            let last = self.try_eval(expression);
            if let Ok(value) = &last
                && truthy(value)
            {
                return value.clone();
            }
            assert!(
                Instant::now() < deadline,
                "{what}: not seen on {} within {PAGE_DEADLINE:?}; `{expression}` gave {last:?}",
                self.url()
            );
            std::thread::sleep(Duration::from_millis(250));
            between();
        }
    }

    /// Clicks the element `selector` picks, as a mouse would (scrolled into view, pressed
    /// at its middle). Retried while the element is missing or was just replaced by the
    /// page's live refresh: such a failure happens before anything is pressed.
    pub(crate) fn click(&self, selector: &str) {
        let deadline = Instant::now() + PAGE_DEADLINE;
        loop {
            let clicked = self
                .tab
                .find_element(selector)
                .and_then(|element| element.click().map(|_| ()));
            match clicked {
                Ok(()) => return,
                Err(e) => assert!(
                    Instant::now() < deadline,
                    "clicking {selector} on {}: {e}",
                    self.url()
                ),
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Gives pages a viewport of `size` CSS pixels, one device pixel each, and waits
    /// until the page has it. (The window size Chromium is started with is not the
    /// viewport's: headless Chromium keeps room for window decorations.)
    pub(crate) fn resize(&self, (width, height): (u32, u32)) {
        // Built from its JSON form: the command has many optional fields, and this way
        // only the ones that matter here are named.
        let metrics: SetDeviceMetricsOverride = serde_json::from_value(json!({
            "width": width,
            "height": height,
            "deviceScaleFactor": 1,
            "mobile": false,
        }))
        .unwrap_or_else(|e| panic!("the viewport command: {e}"));
        self.tab
            .call_method(metrics)
            .unwrap_or_else(|e| panic!("setting a {width}x{height} viewport: {e}"));
        self.wait_until(
            &format!("a {width}x{height} viewport"),
            &format!("window.innerWidth === {width} && window.innerHeight === {height}"),
        );
    }

    /// Saves a PNG screenshot of the viewport as `<name>.png` in [`screenshot_dir`],
    /// checks it is a PNG of the viewport's size, and returns its path.
    pub(crate) fn screenshot(&self, name: &str) -> PathBuf {
        let png = self
            .tab
            .capture_screenshot(CaptureScreenshotFormatOption::Png, None, None, true)
            .unwrap_or_else(|e| panic!("screenshot of {}: {e}", self.url()));
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, &png).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let viewport = self.eval("[window.innerWidth, window.innerHeight]");
        let ratio = self.eval("window.devicePixelRatio").as_f64().unwrap_or(1.0);
        let expected = [0, 1].map(|i| {
            let css = viewport[i].as_f64().unwrap_or_default();
            (css * ratio).round() as u32
        });
        let saved = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(
            png_size(&saved),
            Some((expected[0], expected[1])),
            "{} is a PNG of the {viewport} viewport",
            path.display()
        );
        path
    }
}

/// JavaScript's truthiness, for JSON values.
fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|n| n != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(items) => !items.is_empty(),
        Value::Object(_) => true,
    }
}

/// The width and height in a PNG's header (its first chunk, IHDR); `None` when `bytes`
/// is not a PNG.
fn png_size(bytes: &[u8]) -> Option<(u32, u32)> {
    let header = bytes.get(..24)?;
    if &header[..8] != PNG_SIGNATURE || &header[12..16] != b"IHDR" {
        return None;
    }
    let number = |at: usize| {
        u32::from_be_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]])
    };
    Some((number(16), number(20)))
}
