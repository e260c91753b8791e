//! The settings a lab sets once, resolved from (later wins):
//!
//! 1. built-in defaults;
//! 2. the lab-wide file `/etc/minitorrent/config.toml`
//!    (`MINITORRENT_SYSTEM_CONFIG` names another path; empty: none);
//! 3. the user's file `$XDG_CONFIG_HOME/minitorrent/config.toml`, else
//!    `~/.config/minitorrent/config.toml` (`MINITORRENT_USER_CONFIG` names
//!    another path; empty: none);
//! 4. the file named by `--config FILE`, else by `MINITORRENT_CONFIG`
//!    (it must exist);
//! 5. environment variables `MINITORRENT_TRACKER`, `MINITORRENT_DIR`, …;
//! 6. command-line flags.
//!
//! A file has one `key = value` per line, in TOML syntax: a string in
//! quotes, an integer or `true`/`false`; `#` starts a comment. Tables,
//! arrays and other TOML forms are refused with the file and line. An
//! unknown key is an error (a misspelt `trakcer` would otherwise be ignored
//! without a word), so is a value of the wrong kind; both name the file, the
//! line and the key. A standard file that does not exist is skipped.

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use anyhow::{bail, Result};

use crate::net::tracker::json::{split_tracker, DEFAULT_TRACKER};
use crate::session::{Encryption, TrackerProtocol};

/// The lab-wide file.
pub const SYSTEM_FILE: &str = "/etc/minitorrent/config.toml";
/// Under `$XDG_CONFIG_HOME` or `~/.config`.
pub const USER_FILE: &str = "minitorrent/config.toml";
/// Default UDP port of LAN discovery.
pub const DEFAULT_DISCOVER_PORT: u16 = 6968;

/// One setting: its key in a file, its environment variable, its flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    Tracker,
    TrackerProtocol,
    Dir,
    Port,
    Bind,
    MaxPeers,
    MaxUploadRate,
    MaxDownloadRate,
    Encryption,
    Discover,
    DiscoverPort,
    Trace,
}

impl Key {
    pub const ALL: [Key; 12] = [
        Key::Tracker,
        Key::TrackerProtocol,
        Key::Dir,
        Key::Port,
        Key::Bind,
        Key::MaxPeers,
        Key::MaxUploadRate,
        Key::MaxDownloadRate,
        Key::Encryption,
        Key::Discover,
        Key::DiscoverPort,
        Key::Trace,
    ];

    /// The key in a config file (`-` may stand for `_`).
    pub fn name(self) -> &'static str {
        match self {
            Key::Tracker => "tracker",
            Key::TrackerProtocol => "tracker_protocol",
            Key::Dir => "dir",
            Key::Port => "port",
            Key::Bind => "bind",
            Key::MaxPeers => "max_peers",
            Key::MaxUploadRate => "max_upload_rate",
            Key::MaxDownloadRate => "max_download_rate",
            Key::Encryption => "encryption",
            Key::Discover => "discover",
            Key::DiscoverPort => "discover_port",
            Key::Trace => "trace",
        }
    }

    pub fn env(self) -> &'static str {
        match self {
            Key::Tracker => "MINITORRENT_TRACKER",
            Key::TrackerProtocol => "MINITORRENT_TRACKER_PROTOCOL",
            Key::Dir => "MINITORRENT_DIR",
            Key::Port => "MINITORRENT_PORT",
            Key::Bind => "MINITORRENT_BIND",
            Key::MaxPeers => "MINITORRENT_MAX_PEERS",
            Key::MaxUploadRate => "MINITORRENT_MAX_UPLOAD_RATE",
            Key::MaxDownloadRate => "MINITORRENT_MAX_DOWNLOAD_RATE",
            Key::Encryption => "MINITORRENT_ENCRYPTION",
            Key::Discover => "MINITORRENT_DISCOVER",
            Key::DiscoverPort => "MINITORRENT_DISCOVER_PORT",
            Key::Trace => "MINITORRENT_TRACE",
        }
    }

    pub fn flag(self) -> &'static str {
        match self {
            Key::Tracker => "--tracker",
            Key::TrackerProtocol => "--tracker-protocol",
            Key::Dir => "--dir",
            Key::Port => "--port",
            Key::Bind => "--bind",
            Key::MaxPeers => "--max-peers",
            Key::MaxUploadRate => "--max-upload-rate",
            Key::MaxDownloadRate => "--max-download-rate",
            Key::Encryption => "--encryption",
            Key::Discover => "--no-discover",
            Key::DiscoverPort => "--discover-port",
            Key::Trace => "--trace",
        }
    }

    fn from_name(s: &str) -> Option<Key> {
        let s = s.replace('-', "_");
        Key::ALL.into_iter().find(|k| k.name() == s)
    }

    fn index(self) -> usize {
        Key::ALL.iter().position(|k| *k == self).unwrap_or(0)
    }
}

/// Where a setting's value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Default,
    File { path: PathBuf, line: usize },
    Env(&'static str),
    Flag(&'static str),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Default => write!(f, "default"),
            Origin::File { path, line } => write!(f, "{} line {line}", path.display()),
            Origin::Env(v) => write!(f, "env {v}"),
            Origin::Flag(fl) => write!(f, "{fl}"),
        }
    }
}

/// Values given on the command line (`None`: not given).
#[derive(Debug, Clone, Default)]
pub struct Flags {
    pub config: Option<PathBuf>,
    pub tracker: Option<String>,
    pub tracker_protocol: Option<TrackerProtocol>,
    pub dir: Option<PathBuf>,
    pub port: Option<u16>,
    pub bind: Option<IpAddr>,
    pub max_peers: Option<usize>,
    pub max_upload_rate: Option<u64>,
    pub max_download_rate: Option<u64>,
    pub encryption: Option<Encryption>,
    /// `Some(false)` for `--no-discover`.
    pub discover: Option<bool>,
    pub discover_port: Option<u16>,
    /// `Some(true)` for `--trace` (there is no flag to turn it off).
    pub trace: Option<bool>,
}

/// Why a config file was or was not read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileState {
    Read,
    Missing,
}

/// A file [`load`] looked at.
#[derive(Debug, Clone)]
pub struct FileSeen {
    pub path: PathBuf,
    /// "lab-wide", "user", "--config", "MINITORRENT_CONFIG".
    pub role: String,
    pub state: FileState,
}

/// The settings in effect.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The tracker to use whatever a torrent announces; `None`: the
    /// torrent's announce, else the default.
    pub tracker: Option<String>,
    pub tracker_protocol: TrackerProtocol,
    pub dir: PathBuf,
    pub port: u16,
    pub bind: IpAddr,
    pub max_peers: usize,
    /// Bytes per second; 0: unlimited.
    pub max_upload_rate: u64,
    /// Bytes per second; 0: unlimited.
    pub max_download_rate: u64,
    /// MSE/PE for peer connections (`--encryption`).
    pub encryption: Encryption,
    /// Look for a tracker on the LAN when none is configured.
    pub discover: bool,
    pub discover_port: u16,
    pub trace: bool,
    origins: Vec<Origin>,
    /// The files looked at, in the order read.
    pub files: Vec<FileSeen>,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            tracker: None,
            tracker_protocol: TrackerProtocol::Auto,
            dir: PathBuf::from("."),
            port: 0,
            bind: IpAddr::from([0, 0, 0, 0]),
            max_peers: 8,
            max_upload_rate: 0,
            max_download_rate: 0,
            encryption: Encryption::default(),
            discover: true,
            discover_port: DEFAULT_DISCOVER_PORT,
            trace: false,
            origins: vec![Origin::Default; Key::ALL.len()],
            files: Vec::new(),
        }
    }
}

/// A value as a file or the environment wrote it.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Str(String),
    Int(i64),
    Bool(bool),
}

impl Value {
    fn kind(&self) -> &'static str {
        match self {
            Value::Str(_) => "a string",
            Value::Int(_) => "an integer",
            Value::Bool(_) => "true or false",
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Str(s) => write!(f, "{s:?}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Bool(b) => write!(f, "{b}"),
        }
    }
}

impl Settings {
    /// Where `key`'s value came from.
    pub fn origin(&self, key: Key) -> &Origin {
        &self.origins[key.index()]
    }

    /// `key`'s value as `minitorrent config` shows it.
    pub fn show(&self, key: Key) -> String {
        match key {
            Key::Tracker => match &self.tracker {
                Some(t) => t.clone(),
                None => format!("(none: a torrent's announce, else {DEFAULT_TRACKER})"),
            },
            Key::TrackerProtocol => format!("{:?}", self.tracker_protocol).to_lowercase(),
            Key::Dir => self.dir.display().to_string(),
            Key::Port => match self.port {
                0 => "0 (any free port)".into(),
                p => p.to_string(),
            },
            Key::Bind => self.bind.to_string(),
            Key::MaxPeers => self.max_peers.to_string(),
            Key::MaxUploadRate => rate_text(self.max_upload_rate),
            Key::MaxDownloadRate => rate_text(self.max_download_rate),
            Key::Encryption => self.encryption.name().into(),
            Key::Discover => self.discover.to_string(),
            Key::DiscoverPort => self.discover_port.to_string(),
            Key::Trace => self.trace.to_string(),
        }
    }

    /// Sets `key` from a file or the environment.
    fn set(&mut self, key: Key, v: &Value, origin: Origin) -> Result<(), String> {
        let expand = matches!(origin, Origin::File { .. });
        match key {
            Key::Tracker => {
                let t = want_str(v, "like \"192.168.1.10\" or \"udp://lab-pc:6969\"")?;
                split_tracker(t).map_err(|e| format!("{t:?}: {e}"))?;
                self.tracker = Some(t.trim().to_string());
            }
            Key::TrackerProtocol => {
                self.tracker_protocol = parse_protocol(want_str(v, "auto, json or bep15")?)?;
            }
            Key::Dir => {
                let d = want_str(v, "a directory like \"~/Downloads\"")?;
                if d.is_empty() {
                    return Err("an empty directory name".into());
                }
                self.dir = if expand { expand_home(d) } else { d.into() };
            }
            Key::Port => {
                self.port = want_int(v, 0, u16::MAX as u64, "a TCP port, 0 for any")? as u16
            }
            Key::Bind => {
                let s = want_str(v, "an IP address like \"0.0.0.0\"")?;
                self.bind = s
                    .trim()
                    .parse()
                    .map_err(|_| format!("{s:?} is not an IP address like \"0.0.0.0\""))?;
            }
            Key::MaxPeers => {
                self.max_peers = want_int(v, 1, 10_000, "a number of peers")? as usize;
            }
            Key::MaxUploadRate => self.max_upload_rate = want_rate(v)?,
            Key::MaxDownloadRate => self.max_download_rate = want_rate(v)?,
            Key::Encryption => {
                let e = want_str(v, Encryption::NAMES)?;
                self.encryption = Encryption::parse(e)
                    .ok_or_else(|| format!("{e:?} is not {}", Encryption::NAMES))?;
            }
            Key::Discover => self.discover = want_bool(v)?,
            Key::DiscoverPort => {
                self.discover_port = want_int(v, 1, u16::MAX as u64, "a UDP port")? as u16;
            }
            Key::Trace => self.trace = want_bool(v)?,
        }
        self.origins[key.index()] = origin;
        Ok(())
    }

    fn apply_flags(&mut self, f: &Flags) {
        let mut from = |key: Key| self.origins[key.index()] = Origin::Flag(key.flag());
        if f.tracker.is_some() {
            from(Key::Tracker);
        }
        if f.tracker_protocol.is_some() {
            from(Key::TrackerProtocol);
        }
        if f.dir.is_some() {
            from(Key::Dir);
        }
        if f.port.is_some() {
            from(Key::Port);
        }
        if f.bind.is_some() {
            from(Key::Bind);
        }
        if f.max_peers.is_some() {
            from(Key::MaxPeers);
        }
        if f.max_upload_rate.is_some() {
            from(Key::MaxUploadRate);
        }
        if f.max_download_rate.is_some() {
            from(Key::MaxDownloadRate);
        }
        if f.encryption.is_some() {
            from(Key::Encryption);
        }
        if f.discover.is_some() {
            from(Key::Discover);
        }
        if f.discover_port.is_some() {
            from(Key::DiscoverPort);
        }
        if f.trace == Some(true) {
            from(Key::Trace);
        }
        if let Some(t) = &f.tracker {
            self.tracker = Some(t.clone());
        }
        if let Some(p) = f.tracker_protocol {
            self.tracker_protocol = p;
        }
        if let Some(d) = &f.dir {
            self.dir = d.clone();
        }
        if let Some(p) = f.port {
            self.port = p;
        }
        if let Some(b) = f.bind {
            self.bind = b;
        }
        if let Some(n) = f.max_peers {
            self.max_peers = n.max(1);
        }
        if let Some(r) = f.max_upload_rate {
            self.max_upload_rate = r;
        }
        if let Some(r) = f.max_download_rate {
            self.max_download_rate = r;
        }
        if let Some(e) = f.encryption {
            self.encryption = e;
        }
        if let Some(d) = f.discover {
            self.discover = d;
        }
        if let Some(p) = f.discover_port {
            self.discover_port = p;
        }
        if f.trace == Some(true) {
            self.trace = true;
        }
    }
}

fn want_str<'a>(v: &'a Value, like: &str) -> Result<&'a str, String> {
    match v {
        Value::Str(s) => Ok(s),
        _ => Err(format!(
            "{v} is {}; give a string in quotes, {like}",
            v.kind()
        )),
    }
}

fn rate_text(r: u64) -> String {
    match r {
        0 => "0 (unlimited)".into(),
        r => format!("{r} bytes/s"),
    }
}

fn want_rate(v: &Value) -> Result<u64, String> {
    match v {
        Value::Int(_) => want_int(v, 0, u64::MAX, "bytes per second"),
        Value::Str(s) => parse_rate(s),
        Value::Bool(_) => Err(format!(
            "{v} is not a rate: give bytes per second (0: unlimited) or \"500k\", \"2M\""
        )),
    }
}

fn want_int(v: &Value, min: u64, max: u64, what: &str) -> Result<u64, String> {
    let n = match v {
        Value::Int(i) => u64::try_from(*i).ok(),
        Value::Str(s) => s.trim().parse::<u64>().ok(),
        Value::Bool(_) => None,
    };
    n.filter(|n| (min..=max).contains(n))
        .ok_or_else(|| format!("{v} is not {what} from {min} to {max}"))
}

fn want_bool(v: &Value) -> Result<bool, String> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::Str(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(true),
            "false" | "0" | "no" | "off" => Ok(false),
            _ => Err(format!("{v} is not true or false")),
        },
        Value::Int(_) => Err(format!("{v} is not true or false")),
    }
}

fn parse_protocol(s: &str) -> Result<TrackerProtocol, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "auto" => Ok(TrackerProtocol::Auto),
        "json" => Ok(TrackerProtocol::Json),
        "bep15" => Ok(TrackerProtocol::Bep15),
        _ => Err(format!(
            "{s:?} is not a tracker protocol: auto, json or bep15"
        )),
    }
}

/// A rate in bytes per second: `500000`, `500k`, `2M`, `1.5G` (decimal
/// multiples, as on the command line).
pub fn parse_rate(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (num, mult) = match s.char_indices().last() {
        Some((i, 'k' | 'K')) => (&s[..i], 1_000),
        Some((i, 'm' | 'M')) => (&s[..i], 1_000_000),
        Some((i, 'g' | 'G')) => (&s[..i], 1_000_000_000),
        _ => (s, 1),
    };
    num.parse::<f64>()
        .ok()
        .filter(|v| *v >= 0.0 && v.is_finite())
        .map(|v| (v * mult as f64) as u64)
        .ok_or_else(|| format!("{s:?} is not a rate like 500k or 2M"))
}

/// `~` and `~/x` in a file's directory → under `$HOME`.
fn expand_home(d: &str) -> PathBuf {
    let home = std::env::var_os("HOME").filter(|h| !h.is_empty());
    match (d, home) {
        ("~", Some(h)) => PathBuf::from(h),
        (d, Some(h)) if d.starts_with("~/") => PathBuf::from(h).join(&d[2..]),
        (d, _) => PathBuf::from(d),
    }
}

/// One `key = value` line of a file.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub line: usize,
    pub key: String,
    pub value: Value,
}

/// Parses the `key = value` subset of TOML that config files use. The error
/// is "line N: what is wrong" (the caller adds the file).
pub fn parse_file(text: &str) -> Result<Vec<Entry>, String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut out: Vec<Entry> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line.starts_with('[') {
            return Err(format!(
                "line {n}: {line:?}: tables are not used; write key = value lines only"
            ));
        }
        let Some((key, rest)) = line.split_once('=') else {
            return Err(format!(
                "line {n}: {line:?} is not key = value (e.g. tracker = \"192.168.1.10\")"
            ));
        };
        let key = key.trim();
        if key.is_empty()
            || !key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(format!("line {n}: {key:?} is not a key"));
        }
        let value = parse_value(rest.trim()).map_err(|e| format!("line {n}: {key}: {e}"))?;
        if let Some(prev) = out.iter().find(|e| e.key == key) {
            return Err(format!(
                "line {n}: {key} is set twice (first on line {})",
                prev.line
            ));
        }
        out.push(Entry {
            line: n,
            key: key.to_string(),
            value,
        });
    }
    Ok(out)
}

/// A value and an optional comment after it.
fn parse_value(s: &str) -> Result<Value, String> {
    if s.starts_with("\"\"\"") || s.starts_with("'''") {
        return Err("multi-line strings are not used; write the value on one line".into());
    }
    let (value, rest) = if let Some(body) = s.strip_prefix('"') {
        let mut out = String::new();
        let mut chars = body.char_indices();
        let end = loop {
            let Some((i, c)) = chars.next() else {
                return Err("a string without its closing \"".into());
            };
            match c {
                '"' => break i + 1,
                '\\' => {
                    let Some((_, e)) = chars.next() else {
                        return Err("a string without its closing \"".into());
                    };
                    match e {
                        '"' => out.push('"'),
                        '\\' => out.push('\\'),
                        'n' => out.push('\n'),
                        't' => out.push('\t'),
                        'r' => out.push('\r'),
                        'u' | 'U' => {
                            let len = if e == 'u' { 4 } else { 8 };
                            let hex: String = (0..len)
                                .filter_map(|_| chars.next())
                                .map(|(_, c)| c)
                                .collect();
                            let c = u32::from_str_radix(&hex, 16)
                                .ok()
                                .filter(|_| hex.len() == len)
                                .and_then(char::from_u32)
                                .ok_or_else(|| format!("\\{e}{hex} is not a character"))?;
                            out.push(c);
                        }
                        other => return Err(format!("unknown escape \\{other} in a string")),
                    }
                }
                c => out.push(c),
            }
        };
        (Value::Str(out), &body[end..])
    } else if let Some(body) = s.strip_prefix('\'') {
        let Some(end) = body.find('\'') else {
            return Err("a string without its closing '".into());
        };
        (Value::Str(body[..end].to_string()), &body[end + 1..])
    } else {
        let end = s.find('#').unwrap_or(s.len());
        let word = s[..end].trim();
        let v = match word {
            "" => return Err("no value after =".into()),
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            w if w.starts_with('[') || w.starts_with('{') => {
                return Err(format!(
                    "{w}: arrays and tables are not used; give one value"
                ))
            }
            w => {
                let digits = w.replace('_', "");
                let ok = !w.starts_with('_') && !w.ends_with('_') && !w.contains("__");
                match digits.parse::<i64>() {
                    Ok(i) if ok => Value::Int(i),
                    _ => {
                        return Err(format!(
                            "{w} is not a value: put text in quotes (\"...\"), or give an integer or true/false"
                        ))
                    }
                }
            }
        };
        (v, &s[end..])
    };
    let rest = rest.trim();
    if !rest.is_empty() && !rest.starts_with('#') {
        return Err(format!(
            "{rest:?} after the value (a comment starts with #)"
        ));
    }
    Ok(value)
}

/// Reads settings from the files, the environment (`env`) and `flags`.
pub fn load(flags: &Flags, env: &dyn Fn(&str) -> Option<String>) -> Result<Settings> {
    let mut st = Settings::default();
    let var = |k: &str| env(k).filter(|v| !v.is_empty());
    let path_var = |k: &str| env(k).map(|v| (!v.is_empty()).then(|| PathBuf::from(v)));

    let system = path_var("MINITORRENT_SYSTEM_CONFIG").unwrap_or(Some(SYSTEM_FILE.into()));
    let user = path_var("MINITORRENT_USER_CONFIG").unwrap_or_else(|| {
        let base = var("XDG_CONFIG_HOME")
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
            .or_else(|| var("HOME").map(|h| PathBuf::from(h).join(".config")));
        base.map(|b| b.join(USER_FILE))
    });
    let mut files: Vec<(PathBuf, String, bool)> = Vec::new();
    if let Some(p) = system {
        files.push((p, "lab-wide".into(), false));
    }
    if let Some(p) = user {
        files.push((p, "user".into(), false));
    }
    if let Some(p) = &flags.config {
        files.push((p.clone(), "--config".into(), true));
    } else if let Some(p) = var("MINITORRENT_CONFIG") {
        files.push((p.into(), "MINITORRENT_CONFIG".into(), true));
    }
    for (path, role, required) in files {
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => {
                st.files.push(FileSeen {
                    path,
                    role,
                    state: FileState::Missing,
                });
                continue;
            }
            Err(e) => {
                let hint = match e.kind() {
                    std::io::ErrorKind::NotFound => "",
                    _ => "; make it readable (chmod a+r) or remove it",
                };
                bail!(
                    "cannot read the config file {} ({role}): {e}{hint}",
                    path.display()
                )
            }
        };
        read_file(&mut st, &path, &text)?;
        st.files.push(FileSeen {
            path,
            role,
            state: FileState::Read,
        });
    }
    for key in Key::ALL {
        if let Some(v) = var(key.env()) {
            st.set(key, &Value::Str(v), Origin::Env(key.env()))
                .map_err(|e| anyhow::anyhow!("environment variable {}: {e}", key.env()))?;
        }
    }
    st.apply_flags(flags);
    Ok(st)
}

fn read_file(st: &mut Settings, path: &Path, text: &str) -> Result<()> {
    let entries =
        parse_file(text).map_err(|e| anyhow::anyhow!("config file {} {e}", path.display()))?;
    for e in entries {
        let Some(key) = Key::from_name(&e.key) else {
            let known: Vec<&str> = Key::ALL.iter().map(|k| k.name()).collect();
            bail!(
                "config file {} line {}: unknown key {:?}; the keys are {}",
                path.display(),
                e.line,
                e.key,
                known.join(", ")
            );
        };
        let origin = Origin::File {
            path: path.to_path_buf(),
            line: e.line,
        };
        st.set(key, &e.value, origin).map_err(|why| {
            anyhow::anyhow!(
                "config file {} line {}: {}: {why}",
                path.display(),
                e.line,
                e.key
            )
        })?;
    }
    Ok(())
}

/// The environment of this process.
pub fn process_env(k: &str) -> Option<String> {
    std::env::var(k).ok()
}

/// What `minitorrent config` prints.
pub fn report(st: &Settings) -> String {
    let mut out = String::from("configuration files (read in this order; later ones win):\n");
    if st.files.is_empty() {
        out.push_str("  (none)\n");
    }
    for f in &st.files {
        let state = match f.state {
            FileState::Read => "read",
            FileState::Missing => "not found",
        };
        out.push_str(&format!("  {} ({}): {state}\n", f.path.display(), f.role));
    }
    out.push_str("\nsettings (environment variables override files, flags override both):\n");
    let kw = Key::ALL.iter().map(|k| k.name().len()).max().unwrap_or(0);
    let vw = Key::ALL
        .iter()
        .map(|k| st.show(*k).chars().count())
        .max()
        .unwrap_or(0);
    for key in Key::ALL {
        out.push_str(&format!(
            "  {:kw$} = {:vw$}  from {}\n",
            key.name(),
            st.show(key),
            st.origin(key)
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn tmp(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "mt-config-{tag}-{}-{}",
            std::process::id(),
            fastrand::u32(..)
        ));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn parses_the_toml_subset() {
        let text = "\u{feff}# lab settings\n\ntracker = \"192.168.1.10\"  # the teacher's PC\n\
                    port=7000\nmax-peers = 1_2\ndiscover = false\ndir = 'C:\\x'\nx = \"a\\\"b\\u00e9\"\n";
        let e = parse_file(text).unwrap();
        let got: Vec<(usize, &str, Value)> = e
            .iter()
            .map(|e| (e.line, e.key.as_str(), e.value.clone()))
            .collect();
        assert_eq!(
            got,
            vec![
                (3, "tracker", Value::Str("192.168.1.10".into())),
                (4, "port", Value::Int(7000)),
                (5, "max-peers", Value::Int(12)),
                (6, "discover", Value::Bool(false)),
                (7, "dir", Value::Str("C:\\x".into())),
                (8, "x", Value::Str("a\"bé".into())),
            ]
        );
    }

    #[test]
    fn malformed_lines_name_the_line() {
        let bad = |t: &str, want: &str| {
            let e = parse_file(t).unwrap_err();
            assert!(e.contains(want), "{t:?}: {e}");
        };
        bad(
            "a = 1\n[tracker]\n",
            "line 2: \"[tracker]\": tables are not used",
        );
        bad(
            "\n\ntracker 192.168.1.10\n",
            "line 3: \"tracker 192.168.1.10\" is not key = value",
        );
        bad(
            "tracker = 192.168.1.10\n",
            "line 1: tracker: 192.168.1.10 is not a value: put text in quotes",
        );
        bad("dir = \"/x\n", "line 1: dir: a string without its closing");
        bad("port = 1 2\n", "line 1: port: 1 2 is not a value");
        bad("dir = \"/x\" junk\n", "\"junk\" after the value");
        bad("port = \n", "no value after =");
        bad(
            "port = 1\nport = 2\n",
            "line 2: port is set twice (first on line 1)",
        );
        bad("dirs = [\"a\"]\n", "arrays and tables are not used");
        bad("d = \"\\q\"\n", "unknown escape \\q");
        bad("a b = 1\n", "\"a b\" is not a key");
    }

    #[test]
    fn files_env_and_flags_in_order() {
        let d = tmp("order");
        let sys = d.join("etc.toml");
        let xdg = d.join("xdg");
        std::fs::create_dir_all(xdg.join("minitorrent")).unwrap();
        let user = xdg.join("minitorrent/config.toml");
        std::fs::write(
            &sys,
            "tracker = \"10.0.0.1\"\nport = 7001\nmax_upload_rate = \"2M\"\ndiscover = false\n",
        )
        .unwrap();
        std::fs::write(&user, "# mine\nport = 7002\ndir = \"~/dl\"\n").unwrap();
        let sys_s = sys.to_str().unwrap();
        let xdg_s = xdg.to_str().unwrap();

        let env = env_of(&[
            ("MINITORRENT_SYSTEM_CONFIG", sys_s),
            ("XDG_CONFIG_HOME", xdg_s),
            ("MINITORRENT_MAX_PEERS", "3"),
        ]);
        let st = load(&Flags::default(), &env).unwrap();
        assert_eq!(st.tracker.as_deref(), Some("10.0.0.1"));
        assert_eq!(
            st.origin(Key::Tracker),
            &Origin::File {
                path: sys.clone(),
                line: 1
            }
        );
        assert_eq!(st.port, 7002);
        assert_eq!(
            st.origin(Key::Port),
            &Origin::File {
                path: user.clone(),
                line: 2
            }
        );
        assert_eq!(st.max_upload_rate, 2_000_000);
        assert!(!st.discover);
        assert_eq!(st.discover_port, DEFAULT_DISCOVER_PORT);
        assert_eq!(st.origin(Key::DiscoverPort), &Origin::Default);
        assert_eq!(st.max_peers, 3);
        assert_eq!(
            st.origin(Key::MaxPeers),
            &Origin::Env("MINITORRENT_MAX_PEERS")
        );
        assert!(
            st.dir.ends_with("dl") && !st.dir.starts_with("~"),
            "{:?}",
            st.dir
        );
        assert_eq!(st.files.len(), 2);
        assert!(st.files.iter().all(|f| f.state == FileState::Read));

        let env = env_of(&[
            ("MINITORRENT_SYSTEM_CONFIG", sys_s),
            ("XDG_CONFIG_HOME", xdg_s),
            ("MINITORRENT_PORT", "7003"),
            ("MINITORRENT_TRACKER", "udp://10.0.0.2/announce"),
        ]);
        let st = load(&Flags::default(), &env).unwrap();
        assert_eq!(st.port, 7003);
        assert_eq!(st.origin(Key::Port), &Origin::Env("MINITORRENT_PORT"));
        assert_eq!(st.tracker.as_deref(), Some("udp://10.0.0.2/announce"));

        let flags = Flags {
            port: Some(7004),
            discover: Some(true),
            ..Flags::default()
        };
        let st = load(&flags, &env).unwrap();
        assert_eq!(st.port, 7004);
        assert_eq!(st.origin(Key::Port), &Origin::Flag("--port"));
        assert!(st.discover);

        // --config wins over both files, and must exist.
        let extra = d.join("extra.toml");
        std::fs::write(&extra, "port = 7005\n").unwrap();
        let flags = Flags {
            config: Some(extra.clone()),
            ..Flags::default()
        };
        let env = env_of(&[
            ("MINITORRENT_SYSTEM_CONFIG", sys_s),
            ("XDG_CONFIG_HOME", xdg_s),
            ("MINITORRENT_CONFIG", "/nonexistent/ignored.toml"),
        ]);
        let st = load(&flags, &env).unwrap();
        assert_eq!(st.port, 7005);
        assert_eq!(st.files.len(), 3);
        let flags = Flags::default();
        let e = load(&flags, &env).unwrap_err();
        assert!(
            format!("{e:#}").contains("/nonexistent/ignored.toml (MINITORRENT_CONFIG)"),
            "{e:#}"
        );
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn empty_path_variables_read_no_file() {
        let env = env_of(&[
            ("MINITORRENT_SYSTEM_CONFIG", ""),
            ("MINITORRENT_USER_CONFIG", ""),
            ("HOME", "/nonexistent"),
        ]);
        let st = load(&Flags::default(), &env).unwrap();
        assert!(st.files.is_empty());
        for k in Key::ALL {
            assert_eq!(st.origin(k), &Origin::Default);
        }
        // Without XDG_CONFIG_HOME: ~/.config; a missing file is skipped.
        let env = env_of(&[("MINITORRENT_SYSTEM_CONFIG", ""), ("HOME", "/nonexistent")]);
        let st = load(&Flags::default(), &env).unwrap();
        assert_eq!(st.files.len(), 1);
        assert_eq!(
            st.files[0].path,
            PathBuf::from("/nonexistent/.config/minitorrent/config.toml")
        );
        assert_eq!(st.files[0].state, FileState::Missing);
    }

    #[test]
    fn encryption_comes_from_a_file_the_environment_or_the_flag() {
        let d = tmp("encryption");
        let f = d.join("c.toml");
        std::fs::write(&f, "encryption = \"prefer\"\n").unwrap();
        let fs = f.to_str().unwrap();
        let base = [
            ("MINITORRENT_SYSTEM_CONFIG", fs),
            ("MINITORRENT_USER_CONFIG", ""),
        ];
        let st = load(&Flags::default(), &env_of(&base)).unwrap();
        assert_eq!(st.encryption, Encryption::Prefer);
        assert_eq!(st.show(Key::Encryption), "prefer");
        let env = env_of(&[base[0], base[1], ("MINITORRENT_ENCRYPTION", "REQUIRE")]);
        let st = load(&Flags::default(), &env).unwrap();
        assert_eq!(st.encryption, Encryption::Require);
        assert_eq!(
            st.origin(Key::Encryption),
            &Origin::Env("MINITORRENT_ENCRYPTION")
        );
        let flags = Flags {
            encryption: Some(Encryption::Off),
            ..Flags::default()
        };
        let st = load(&flags, &env).unwrap();
        assert_eq!(st.encryption, Encryption::Off);
        assert_eq!(st.origin(Key::Encryption), &Origin::Flag("--encryption"));
        // Nothing set: accept.
        let none = env_of(&[
            ("MINITORRENT_SYSTEM_CONFIG", ""),
            ("MINITORRENT_USER_CONFIG", ""),
        ]);
        assert_eq!(
            load(&Flags::default(), &none).unwrap().encryption,
            Encryption::Accept
        );
        std::fs::write(&f, "encryption = \"rc4\"\n").unwrap();
        let e = format!("{:#}", load(&Flags::default(), &env_of(&base)).unwrap_err());
        assert!(
            e.contains("line 1: encryption: \"rc4\" is not accept, prefer, require or off"),
            "{e}"
        );
    }

    #[test]
    fn bad_values_name_file_line_and_key() {
        let d = tmp("bad");
        let f = d.join("c.toml");
        let only = |text: &str| {
            std::fs::write(&f, text).unwrap();
            let env = env_of(&[
                ("MINITORRENT_SYSTEM_CONFIG", f.to_str().unwrap()),
                ("MINITORRENT_USER_CONFIG", ""),
            ]);
            format!("{:#}", load(&Flags::default(), &env).unwrap_err())
        };
        let name = f.display().to_string();
        let e = only("port = 1\ntrakcer = \"x\"\n");
        assert!(
            e.contains(&format!(
                "config file {name} line 2: unknown key \"trakcer\""
            )),
            "{e}"
        );
        assert!(e.contains("tracker, tracker_protocol, dir"), "{e}");
        let e = only("\nport = 70000\n");
        assert!(
            e.contains(&format!("{name} line 2: port: 70000 is not a TCP port")),
            "{e}"
        );
        let e = only("tracker = 6969\n");
        assert!(
            e.contains("line 1: tracker: 6969 is an integer; give a string in quotes"),
            "{e}"
        );
        let e = only("tracker = \"host:port\"\n");
        assert!(e.contains("not a port number"), "{e}");
        let e = only("discover = \"maybe\"\n");
        assert!(
            e.contains("line 1: discover: \"maybe\" is not true or false"),
            "{e}"
        );
        let e = only("max_upload_rate = \"fast\"\n");
        assert!(e.contains("not a rate like 500k"), "{e}");
        let e = only("bind = \"everywhere\"\n");
        assert!(e.contains("not an IP address"), "{e}");
        let e = only("tracker_protocol = \"http\"\n");
        assert!(e.contains("auto, json or bep15"), "{e}");

        let env = env_of(&[
            ("MINITORRENT_SYSTEM_CONFIG", ""),
            ("MINITORRENT_USER_CONFIG", ""),
            ("MINITORRENT_PORT", "seven"),
        ]);
        let e = format!("{:#}", load(&Flags::default(), &env).unwrap_err());
        assert!(
            e.contains("environment variable MINITORRENT_PORT: \"seven\" is not a TCP port"),
            "{e}"
        );
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn rates() {
        assert_eq!(parse_rate("500k"), Ok(500_000));
        assert_eq!(parse_rate("2M"), Ok(2_000_000));
        assert_eq!(parse_rate("1.5G"), Ok(1_500_000_000));
        assert_eq!(parse_rate("123"), Ok(123));
        assert!(parse_rate("-1").is_err());
        assert!(parse_rate("fast").is_err());
    }
}
