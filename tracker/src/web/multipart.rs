//! `multipart/form-data` (RFC 7578), only as far as the publish form needs:
//! find the part named `torrent` in a body already read whole (and so
//! already bounded), and return its bytes untouched. Strict where it
//! matters: the boundary from `Content-Type`, each part's headers within a
//! small cap, the closing delimiter present.

/// Most bytes of one part's headers.
const MAX_PART_HEAD: usize = 4096;
/// Most parts looked at.
const MAX_PARTS: usize = 16;

/// The boundary of a `multipart/form-data` content type.
pub fn boundary(content_type: &str) -> Result<String, String> {
    let mut params = content_type.split(';');
    let kind = params.next().unwrap_or("").trim();
    if !kind.eq_ignore_ascii_case("multipart/form-data") {
        return Err(format!(
            "expected a multipart/form-data upload, got Content-Type {kind:?}"
        ));
    }
    for p in params {
        let Some((k, v)) = p.split_once('=') else {
            continue;
        };
        if k.trim().eq_ignore_ascii_case("boundary") {
            let v = v.trim().trim_matches('"');
            if v.is_empty() || v.len() > 70 {
                return Err("the multipart boundary must be 1 to 70 characters".into());
            }
            return Ok(v.to_string());
        }
    }
    Err("the multipart Content-Type names no boundary".into())
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

/// One part: its form field name, file name and content.
#[derive(Debug, PartialEq, Eq)]
pub struct Part<'a> {
    pub name: String,
    pub filename: Option<String>,
    pub data: &'a [u8],
}

/// Every part of `body` (at most [`MAX_PARTS`]).
pub fn parts<'a>(body: &'a [u8], boundary: &str) -> Result<Vec<Part<'a>>, String> {
    let first = format!("--{boundary}");
    let delim = format!("\r\n--{boundary}");
    let start = find(body, first.as_bytes()).ok_or("the upload has no multipart boundary")?;
    // Preamble before the first delimiter is allowed and ignored.
    let mut rest = &body[start + first.len()..];
    let mut out = Vec::new();
    loop {
        if rest.starts_with(b"--") {
            return Ok(out);
        }
        // Transport padding (spaces, tabs) may follow a delimiter.
        while let [b' ' | b'\t', tail @ ..] = rest {
            rest = tail;
        }
        rest = rest
            .strip_prefix(b"\r\n")
            .ok_or("a multipart delimiter is not followed by a line break")?;
        if out.len() >= MAX_PARTS {
            return Err(format!("the upload has more than {MAX_PARTS} parts"));
        }
        let head_end = find(&rest[..rest.len().min(MAX_PART_HEAD + 4)], b"\r\n\r\n")
            .ok_or("a multipart part's headers are missing or too long")?;
        let head = std::str::from_utf8(&rest[..head_end])
            .map_err(|_| "a multipart part's headers are not text")?;
        let (name, filename) = disposition(head)?;
        let content = &rest[head_end + 4..];
        let end = find(content, delim.as_bytes())
            .ok_or("the upload ends before its closing multipart boundary (cut short?)")?;
        out.push(Part {
            name,
            filename,
            data: &content[..end],
        });
        rest = &content[end + delim.len()..];
    }
}

/// `name` and `filename` from a part's `Content-Disposition: form-data`.
fn disposition(head: &str) -> Result<(String, Option<String>), String> {
    for line in head.split("\r\n") {
        let Some((n, v)) = line.split_once(':') else {
            continue;
        };
        if !n.trim().eq_ignore_ascii_case("content-disposition") {
            continue;
        }
        let mut name = None;
        let mut filename = None;
        for p in split_params(v).into_iter().skip(1) {
            if let Some((k, val)) = p.split_once('=') {
                let val = unquote(val.trim());
                match k.trim().to_ascii_lowercase().as_str() {
                    "name" => name = Some(val),
                    "filename" => filename = Some(val),
                    _ => {}
                }
            }
        }
        let name = name.ok_or("a multipart part's Content-Disposition has no name")?;
        return Ok((name, filename));
    }
    Err("a multipart part has no Content-Disposition header".into())
}

/// Splits on `;` outside double quotes.
fn split_params(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ';' if !quoted => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

fn unquote(v: &str) -> String {
    match v.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
        Some(inner) => {
            let mut out = String::with_capacity(inner.len());
            let mut chars = inner.chars();
            while let Some(c) = chars.next() {
                if c == '\\' {
                    if let Some(n) = chars.next() {
                        out.push(n);
                    }
                } else {
                    out.push(c);
                }
            }
            out
        }
        None => v.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(boundary: &str, parts: &[(&str, Option<&str>, &[u8])]) -> Vec<u8> {
        let mut b = b"preamble\r\n".to_vec();
        for (name, file, data) in parts {
            b.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
            match file {
                Some(f) => b.extend_from_slice(
                    format!(
                        "Content-Disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\nContent-Type: application/x-bittorrent\r\n\r\n"
                    )
                    .as_bytes(),
                ),
                None => b.extend_from_slice(
                    format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes(),
                ),
            }
            b.extend_from_slice(data);
            b.extend_from_slice(b"\r\n");
        }
        b.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        b
    }

    #[test]
    fn finds_the_file_byte_for_byte() {
        // Binary content with CR LF and a near-boundary inside.
        let data: &[u8] = b"d4:infod\r\n--XYabc\r\n\x00\xffee";
        let body = form(
            "XYZ",
            &[
                ("note", None, b"hi"),
                ("torrent", Some("a;b.torrent"), data),
            ],
        );
        let ct = "multipart/form-data; boundary=\"XYZ\"";
        let p = parts(&body, &boundary(ct).unwrap()).unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].name, "note");
        assert_eq!(p[0].data, b"hi");
        assert_eq!(p[1].name, "torrent");
        assert_eq!(p[1].filename.as_deref(), Some("a;b.torrent"));
        assert_eq!(p[1].data, data);
    }

    #[test]
    fn refuses_what_is_not_a_whole_form() {
        assert!(boundary("application/json").is_err());
        assert!(boundary("multipart/form-data").is_err());
        assert!(boundary("multipart/form-data; boundary=").is_err());
        let body = form("B", &[("torrent", Some("x"), b"abc")]);
        // Cut short: no closing delimiter.
        assert!(parts(&body[..body.len() - 10], "B").is_err());
        assert!(parts(b"no boundary here", "B").is_err());
        assert!(parts(b"--B\r\nno headers end", "B").is_err());
        assert!(parts(b"--B\r\nX-Other: 1\r\n\r\nabc\r\n--B--", "B").is_err());
        let many: Vec<(&str, Option<&str>, &[u8])> = vec![("f", None, b"x"); 20];
        assert!(parts(&form("B", &many), "B").is_err());
    }
}
