//! Hostnames as names: normalising what DNS, Host headers and SNI carry, and deciding
//! when two names mean the same service.

use std::net::IpAddr;

/// Lower-case, without a trailing dot or a `:port`; `None` for an IP literal or anything
/// that is not a plausible DNS name (so a garbled Host header names nothing).
pub fn normalise_hostname(raw: &str) -> Option<String> {
    let mut h = raw.trim();
    // `[v6]:port` or `[v6]` is an address, not a name.
    if h.starts_with('[') {
        return None;
    }
    if let Some((name, port)) = h.rsplit_once(':') {
        if port.bytes().all(|b| b.is_ascii_digit()) {
            h = name;
        } else {
            return None;
        }
    }
    let h = h.strip_suffix('.').unwrap_or(h);
    if h.is_empty() || h.len() > 253 || h.parse::<IpAddr>().is_ok() {
        return None;
    }
    let valid_label = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if !h.split('.').all(valid_label) {
        return None;
    }
    Some(h.to_ascii_lowercase())
}

/// The service name a hostname stands for: a Kubernetes Service name
/// (`orders.shop.svc.cluster.local` -> `orders`), else the hostname itself.
pub fn service_of_hostname(hostname: &str) -> String {
    let labels: Vec<&str> = hostname.split('.').collect();
    if let Some(svc) = labels.iter().position(|l| *l == "svc") {
        // <service>.<namespace>.svc[.<cluster domain>]
        if svc == 2 {
            return labels[0].to_owned();
        }
    }
    hostname.to_owned()
}

/// Two names agree when they are equal or one is the first DNS label of the other
/// (`users` and `users.internal`): a Host header that spells out the service's DNS name
/// is not a conflict with the services file.
pub fn names_agree(a: &str, b: &str) -> bool {
    let first = |s: &str| s.split('.').next().unwrap_or(s).to_owned();
    a.eq_ignore_ascii_case(b)
        || first(a).eq_ignore_ascii_case(b)
        || first(b).eq_ignore_ascii_case(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_host_header_values() {
        assert_eq!(
            normalise_hostname("Users.Internal:8080").as_deref(),
            Some("users.internal")
        );
        assert_eq!(
            normalise_hostname("shop.example.test.").as_deref(),
            Some("shop.example.test")
        );
        assert_eq!(normalise_hostname("10.77.0.10"), None);
        assert_eq!(normalise_hostname("10.77.0.10:80"), None);
        assert_eq!(normalise_hostname("[::1]:8080"), None);
        assert_eq!(normalise_hostname("bad host"), None);
        assert_eq!(normalise_hostname("a..b"), None);
        assert_eq!(normalise_hostname(""), None);
        assert_eq!(normalise_hostname("host:notaport"), None);
    }

    #[test]
    fn kubernetes_service_names_are_shortened() {
        assert_eq!(
            service_of_hostname("orders.shop.svc.cluster.local"),
            "orders"
        );
        assert_eq!(service_of_hostname("orders.shop.svc"), "orders");
        assert_eq!(service_of_hostname("fraud.internal"), "fraud.internal");
        assert_eq!(service_of_hostname("svc.example.com"), "svc.example.com");
    }

    #[test]
    fn first_label_agreement() {
        assert!(names_agree("users", "users.internal"));
        assert!(names_agree("users.internal", "users"));
        assert!(names_agree("Users", "users"));
        assert!(!names_agree("gateway", "shop.example.test"));
        assert!(!names_agree("users.a", "users.b"));
    }
}
