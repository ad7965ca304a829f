//! Route templating: query removed, identifiers replaced by `{id}`.
//!
//! Hand-written (no crate does this): a route must group requests to the same handler while
//! never carrying an identifier, token or e-mail address into a record.

/// `/orders/123?x=1` -> `/orders/{id}`.
pub fn template(target: &str) -> String {
    let once = template_once(target);
    // Dropped parameters can leave a path that reads as an absolute URL (`http:;x//h@`
    // gives `http://{id}`); template that too, so that templating a route never changes
    // it. A result starting with `/` cannot read as one, so once more is enough.
    if strip_scheme(&once).is_some() {
        template_once(&once)
    } else {
        once
    }
}

/// Most query parameter names kept per request.
const MAX_QUERY_NAMES: usize = 16;

/// The names of a target's query parameters, sorted and comma-separated (`/o?b=1&a=2`
/// -> `a,b`); `None` without a query. Only the names of `name=value` items: every value
/// is dropped, and so is an item without `=` (it may be a bare token) and a name that
/// could itself be data (one that [`template`] would turn into `{id}`, or one outside
/// `[A-Za-z0-9_.-]`, or over 64 bytes).
pub fn query_names(target: &str) -> Option<String> {
    let q = target.split('#').next()?.split_once('?')?.1;
    let mut names: Vec<&str> = q
        .split('&')
        // A bare item (`?s3cr3t`) may be the value itself: only `name=value` names.
        .filter_map(|kv| kv.split_once('=').map(|(k, _)| k))
        .map(|n| n.strip_suffix("[]").unwrap_or(n))
        .filter(|n| {
            !n.is_empty()
                && n.len() <= 64
                && n.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                && n.bytes()
                    .all(|c| c.is_ascii_alphanumeric() || b"_.-".contains(&c))
                && !is_identifier(n)
        })
        .collect();
    names.sort_unstable();
    names.dedup();
    names.truncate(MAX_QUERY_NAMES);
    (!names.is_empty()).then(|| names.join(","))
}

/// A gRPC method path `/package.Service/Method` kept as it is: identifier characters
/// only (letters, digits, `_`, and `.` in the service), no run of 4 or more digits, at
/// most 200 bytes; `None` for anything else (then [`template`] it).
pub fn grpc_method(path: &str) -> Option<String> {
    let rest = path.strip_prefix('/')?;
    let (service, method) = rest.split_once('/')?;
    let ident = |s: &str, dots: bool| {
        s.bytes()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == b'_')
            && s.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'_' || (dots && c == b'.'))
    };
    let ok = path.len() <= 200
        && ident(service, true)
        && ident(method, false)
        && longest_digit_run(path.as_bytes()) < 4;
    ok.then(|| path.to_owned())
}

fn template_once(target: &str) -> String {
    // The query and fragment may hold secrets: drop them first.
    let end = target.find(['?', '#']).unwrap_or(target.len());
    let mut path = &target[..end];
    if path == "*" {
        return "*".to_owned();
    }
    if let Some(rest) = strip_scheme(path) {
        // Absolute form: skip the authority (which may hold `user:pass@`).
        path = rest.find('/').map_or("/", |i| &rest[i..]);
    }
    if path.is_empty() {
        return "/".to_owned();
    }
    let mut out = String::with_capacity(path.len());
    for (i, seg) in path.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        // Matrix parameters (`;jsessionid=...`) are dropped like the query.
        let seg = seg.split(';').next().unwrap_or("");
        if is_identifier(seg) {
            out.push_str("{id}");
        } else {
            out.push_str(seg);
        }
    }
    // A target that was only a matrix parameter (`;jsessionid=...`) leaves nothing: it is
    // the root, as an empty path is, so that templating a route again never changes it.
    if out.is_empty() {
        out.push('/');
    }
    out
}

fn strip_scheme(path: &str) -> Option<&str> {
    let colon = path.find("://")?;
    let scheme = &path[..colon];
    let ok = !scheme.is_empty()
        && scheme
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"+-.".contains(&c));
    ok.then(|| &path[colon + 3..])
}

fn is_identifier(seg: &str) -> bool {
    let b = seg.as_bytes();
    if b.is_empty() {
        return false;
    }
    if seg.contains('@') || b.iter().all(u8::is_ascii_digit) || is_uuid(b) {
        return true;
    }
    // A code with a long number in it (`SKU-12116`, `ord_20240117`) names one thing;
    // short numbers (`v1`, `oauth2`, `h264`) name an API or a format.
    if longest_digit_run(b) >= 4 {
        return true;
    }
    let has_digit = b.iter().any(u8::is_ascii_digit);
    if b.len() >= 8 && has_digit && b.iter().all(u8::is_ascii_hexdigit) {
        return true;
    }
    b.len() >= 16
        && has_digit
        && b.iter().any(u8::is_ascii_alphabetic)
        && b.iter()
            .all(|&c| c.is_ascii_alphanumeric() || b"-_+=~.%".contains(&c))
}

fn longest_digit_run(b: &[u8]) -> usize {
    b.split(|c| !c.is_ascii_digit())
        .map(<[u8]>::len)
        .max()
        .unwrap_or(0)
}

fn is_uuid(b: &[u8]) -> bool {
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

#[cfg(test)]
mod tests {
    use super::template;

    #[test]
    fn codes_with_long_numbers_are_identifiers() {
        assert_eq!(template("/items/SKU-12116"), "/items/{id}");
        assert_eq!(template("/o/ord_20240117/x"), "/o/{id}/x");
        assert_eq!(template("/api/v1/oauth2/h264"), "/api/v1/oauth2/h264");
        assert_eq!(template("/y/2024"), "/y/{id}");
    }

    #[test]
    fn a_bare_matrix_parameter_is_the_root_and_templating_is_idempotent() {
        assert_eq!(template(";jsessionid=ABC123"), "/");
        for t in [
            ";x",
            "",
            "/a;b",
            "?q",
            "http://h;p",
            "/x/123;y",
            "http:;r//csp.@x",
        ] {
            let once = template(t);
            assert_eq!(template(&once), once, "{t:?}");
        }
    }

    #[test]
    fn brief_example() {
        assert_eq!(
            template("/orders/123/items/550e8400-e29b-41d4-a716-446655440000?token=x"),
            "/orders/{id}/items/{id}"
        );
    }

    #[test]
    fn query_and_fragment_removed() {
        assert_eq!(template("/search?q=secret#frag"), "/search");
        assert_eq!(template("/a#b?c"), "/a");
        assert_eq!(template("?only=query"), "/");
        assert_eq!(template(""), "/");
        assert_eq!(template("/"), "/");
    }

    #[test]
    fn absolute_form_keeps_path_only() {
        assert_eq!(
            template("http://example.com:8080/users/42?x=1"),
            "/users/{id}"
        );
        assert_eq!(template("https://user:pw@example.com/a"), "/a");
        assert_eq!(template("http://example.com"), "/");
        assert_eq!(template("HTTP://example.com/x"), "/x");
    }

    #[test]
    fn asterisk_and_authority_form() {
        assert_eq!(template("*"), "*");
        assert_eq!(template("example.com:443"), "example.com:443");
    }

    #[test]
    fn identifier_kinds() {
        // hex run of >= 8 with a digit
        assert_eq!(template("/blobs/deadbeef01"), "/blobs/{id}");
        // pure-letter hex word stays (no digit): it is a word, not an id
        assert_eq!(template("/cafebabe/deadbeef"), "/cafebabe/deadbeef");
        // short hex with digit stays (< 8)
        assert_eq!(template("/v1/ab12"), "/v1/ab12");
        // long mixed token (base64url-ish)
        assert_eq!(template("/t/aGVsbG8gd29ybGQ1MjM0"), "/t/{id}");
        // long word without digits stays
        assert_eq!(template("/internationalization"), "/internationalization");
        // e-mail like
        assert_eq!(
            template("/users/bob@example.com/inbox"),
            "/users/{id}/inbox"
        );
        assert_eq!(template("/api/v2/items/0"), "/api/v2/items/{id}");
        // upper-case UUID
        assert_eq!(
            template("/x/550E8400-E29B-41D4-A716-446655440000"),
            "/x/{id}"
        );
        // not quite a UUID, but still a long mixed token
        assert_eq!(template("/x/550e8400e29b41d4a716446655440000"), "/x/{id}");
    }

    #[test]
    fn matrix_params_and_trailing_slash() {
        assert_eq!(template("/cart;jsessionid=ABC123/items/"), "/cart/items/");
        assert_eq!(template("/a//b"), "/a//b");
        assert_eq!(template("/orders/77;v=2"), "/orders/{id}");
    }
}

#[cfg(test)]
mod query_name_tests {
    use super::query_names;

    #[test]
    fn only_names_that_cannot_be_data_are_kept() {
        assert_eq!(query_names("/orders"), None);
        assert_eq!(
            query_names("/o?page=2&customer_id=7&page=3&ids[]=1#frag").as_deref(),
            Some("customer_id,ids,page")
        );
        // Values never; names that look like identifiers, e-mails or tokens neither.
        assert_eq!(
            query_names("/o?a1b2c3d4e5f6a7b8=1&x@y.z=1&9lives=1&12345678=1&token=s3cr3t&flag")
                .as_deref(),
            Some("token")
        );
        assert_eq!(query_names("/o?=1&&"), None);
    }
}
