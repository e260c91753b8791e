//! Headless Chromium for the browser tests: load a page, let its JavaScript
//! run, and get the rendered DOM (or a screenshot).
//!
//! ```ignore
//! let Some(chromium) = common::chromium::Chromium::or_skip("my_test") else { return };
//! let dom = chromium.dump_dom(&url, 5000).expect("chromium");
//! assert!(common::chromium::count(&dom, "<tr data-addr=") >= 2);
//! ```
//!
//! Every run gets a fresh profile directory (removed afterwards) and its own
//! process group, killed with everything in it on every path: success,
//! timeout, error and panic (the guard's `Drop`).
//!
//! Which browser: `$MINITORRENT_CHROMIUM` when set, else the first of
//! `chromium`, `chromium-browser`, `google-chrome`, `google-chrome-stable` on
//! the `PATH`. Without one the tests skip with a message, unless
//! `MINITORRENT_REQUIRE_CHROMIUM=1` (set by scripts/test.sh once it has
//! installed Debian's `chromium`), which turns the skip into a failure.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The longest one chromium run may take before it is killed.
pub const CHROMIUM_TIMEOUT: Duration = Duration::from_secs(25);

const NAMES: &[&str] = &[
    "chromium",
    "chromium-browser",
    "google-chrome",
    "google-chrome-stable",
];

/// A headless Chromium binary.
pub struct Chromium {
    pub bin: PathBuf,
}

impl Chromium {
    /// The browser, if one is installed (see the module's doc).
    pub fn find() -> Option<Chromium> {
        if let Some(p) = std::env::var_os("MINITORRENT_CHROMIUM") {
            let p = PathBuf::from(p);
            return p.is_file().then_some(Chromium { bin: p });
        }
        let path = std::env::var_os("PATH")?;
        for dir in std::env::split_paths(&path) {
            for name in NAMES {
                let p = dir.join(name);
                if p.is_file() {
                    return Some(Chromium { bin: p });
                }
            }
        }
        None
    }

    /// [`Chromium::find`], or `None` after printing why `test` is skipped.
    /// Panics instead when `MINITORRENT_REQUIRE_CHROMIUM=1`.
    pub fn or_skip(test: &str) -> Option<Chromium> {
        if let Some(c) = Chromium::find() {
            return Some(c);
        }
        let why = "no chromium found (looked for $MINITORRENT_CHROMIUM, then chromium, \
                   chromium-browser, google-chrome on the PATH); install Debian's with \
                   `apt-get install chromium` (scripts/test.sh does)";
        if std::env::var("MINITORRENT_REQUIRE_CHROMIUM").as_deref() == Ok("1") {
            panic!("{test}: {why}, and MINITORRENT_REQUIRE_CHROMIUM=1 forbids skipping");
        }
        // Straight to the process's stderr: `cargo test` would hide an
        // eprintln! of a passing test.
        use std::io::Write;
        let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {why}");
        None
    }

    /// Loads `url`, lets its scripts run for `virtual_ms` of virtual time
    /// (timers fire without waiting; network fetches pause the clock), and
    /// returns the DOM as HTML. An error when a script of the page threw an
    /// exception nobody caught (or left a promise rejection unhandled).
    pub fn dump_dom(&self, url: &str, virtual_ms: u32) -> Result<String, String> {
        let (out, err) = self.run(&[
            format!("--virtual-time-budget={virtual_ms}"),
            "--dump-dom".into(),
            url.into(),
        ])?;
        let uncaught = uncaught_errors(&err);
        if !uncaught.is_empty() {
            return Err(format!(
                "the page's JavaScript threw: {}",
                uncaught.join("\n")
            ));
        }
        if out.trim().is_empty() {
            return Err(format!("chromium dumped no DOM for {url}"));
        }
        Ok(out)
    }

    /// Loads `url` in a `width`×`height` window, lets its scripts run for
    /// `virtual_ms`, and saves a PNG screenshot to `png`.
    pub fn screenshot(
        &self,
        url: &str,
        png: &Path,
        (width, height): (u32, u32),
        virtual_ms: u32,
    ) -> Result<(), String> {
        let _ = std::fs::remove_file(png);
        self.run(&[
            format!("--virtual-time-budget={virtual_ms}"),
            format!("--window-size={width},{height}"),
            "--hide-scrollbars".into(),
            format!("--screenshot={}", png.display()),
            url.into(),
        ])?;
        match std::fs::metadata(png) {
            Ok(m) if m.len() > 0 => Ok(()),
            _ => Err(format!("chromium wrote no screenshot to {}", png.display())),
        }
    }

    /// Runs chromium headless with `args` after the common flags; returns
    /// its stdout and stderr (with the page's console messages), or an error
    /// with the tail of its stderr.
    fn run(&self, args: &[String]) -> Result<(String, String), String> {
        let profile = unique_dir("minitorrent-chromium")?;
        let mut cmd = Command::new(&self.bin);
        cmd.args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-quic",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--mute-audio",
            "--disable-crash-reporter",
            "--disable-breakpad",
            // The page's console messages on stderr, for uncaught_errors.
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .env("HOME", &profile)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
        let child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&profile);
                return Err(format!("cannot start {}: {e}", self.bin.display()));
            }
        };
        let mut guard = Guard {
            child,
            profile,
            reaped: false,
        };
        let stdout = reader(guard.child.stdout.take());
        let stderr = reader(guard.child.stderr.take());
        let deadline = Instant::now() + CHROMIUM_TIMEOUT;
        let status = loop {
            match guard.child.try_wait() {
                Ok(Some(st)) => {
                    guard.reaped = true;
                    break st;
                }
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                Ok(None) => {
                    drop(guard); // kills the whole group
                    let err = stderr.join().unwrap_or_default();
                    return Err(format!(
                        "chromium took more than {} s (killed); stderr: {}",
                        CHROMIUM_TIMEOUT.as_secs(),
                        tail(&err)
                    ));
                }
                Err(e) => return Err(format!("waiting for chromium: {e}")),
            }
        };
        drop(guard); // the renderer and other helpers, if any linger
        let out = stdout.join().unwrap_or_default();
        let err = stderr.join().unwrap_or_default();
        if !status.success() {
            return Err(format!(
                "chromium exited with {status}; stderr: {}",
                tail(&err)
            ));
        }
        Ok((out, err))
    }
}

/// The console messages of uncaught exceptions in chromium's stderr (with
/// `--enable-logging=stderr`, a line like `[...:INFO:CONSOLE:1] "Uncaught
/// TypeError: ...", source: URL (LINE)`).
pub fn uncaught_errors(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .filter(|l| l.contains(":CONSOLE") && l.contains("\"Uncaught"))
        .map(|l| l.split_once("] ").map_or(l, |(_, m)| m).to_string())
        .collect()
}

/// Kills chromium's process group and removes its profile when dropped.
struct Guard {
    child: Child,
    profile: PathBuf,
    reaped: bool,
}

impl Drop for Guard {
    fn drop(&mut self) {
        // The group id is the leader's pid (process_group(0)); Linux does
        // not hand that pid to a new process while the group has members.
        let pgid = self.child.id() as libc::pid_t;
        // SAFETY: kill(2) with a negative pid signals that process group.
        unsafe {
            libc::kill(-pgid, libc::SIGKILL);
        }
        if !self.reaped {
            let _ = self.child.wait();
        }
        // Chromium's helpers may still hold files for a moment.
        for _ in 0..20 {
            if std::fs::remove_dir_all(&self.profile).is_ok() || !self.profile.exists() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn reader<R: Read + Send + 'static>(r: Option<R>) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(mut r) = r {
            let mut buf = Vec::new();
            let _ = r.read_to_end(&mut buf);
            s = String::from_utf8_lossy(&buf).into_owned();
        }
        s
    })
}

fn tail(s: &str) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

/// A new empty directory under the system's temp dir, unique to this call.
pub fn unique_dir(prefix: &str) -> Result<PathBuf, String> {
    static SEQ: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let dir = std::env::temp_dir().join(format!(
        "{prefix}-{}-{}-{nanos}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    Ok(dir)
}

/// How many times `needle` occurs in `haystack`.
pub fn count(haystack: &str, needle: &str) -> usize {
    haystack.matches(needle).count()
}

/// The text of the first element whose opening tag contains `marker`
/// (e.g. `id="status"`), tags stripped, entities left as they are.
pub fn text_of(dom: &str, marker: &str) -> Option<String> {
    let at = dom.find(marker)?;
    let open_end = at + dom[at..].find('>')? + 1;
    let tag_start = dom[..at].rfind('<')?;
    let name: String = dom[tag_start + 1..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric())
        .collect();
    let close = format!("</{name}>");
    // Nested elements of the same name are rare on these pages; the first
    // closing tag is good enough for the ids the tests use.
    let end = open_end + dom[open_end..].find(&close)?;
    let mut out = String::new();
    let mut in_tag = false;
    for c in dom[open_end..end].chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    Some(out)
}

/// For each opening tag that starts with `tag_start` (e.g. `<g class="node"`),
/// the value of its attribute `attr` (empty when it has none). On the swarm
/// page: `attrs(&dom, r#"<g class="node""#, "data-addr")` lists the graph's
/// peers, `attrs(&dom, r#"<g class="edge-g""#, "data-from")` the senders of
/// its edges, `attrs(&dom, r#"<tr data-addr"#, "data-addr")` the table's rows.
pub fn attrs(dom: &str, tag_start: &str, attr: &str) -> Vec<String> {
    let key = format!(" {attr}=\"");
    let mut out = Vec::new();
    let mut rest = dom;
    while let Some(at) = rest.find(tag_start) {
        let tag_end = rest[at..].find('>').map_or(rest.len(), |e| at + e);
        let tag = &rest[at..tag_end];
        let value = tag
            .find(&key)
            .map(|k| {
                let v = &tag[k + key.len()..];
                v[..v.find('"').unwrap_or(v.len())].to_string()
            })
            .unwrap_or_default();
        out.push(value);
        rest = &rest[tag_end..];
    }
    out
}
