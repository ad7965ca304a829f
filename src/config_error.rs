//! How a configuration file's parse error is reported: where (`at line L column C (byte
//! B)`) and what, in linkrank's words. One place for the services file, the Kubernetes
//! inventory and the cost constants.

/// The parsers (serde_norway, serde_json) append " at line L column C" to their messages;
/// the files' error types report the location in their own words.
pub(crate) fn strip_location(message: &str) -> String {
    match message.find(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

/// A YAML error as (` at line L column C (byte B)` or empty, the message without its
/// location). The message names the offending construct, never a value.
pub(crate) fn yaml_parts(e: &serde_norway::Error) -> (String, String) {
    let at = e
        .location()
        .map(|l| {
            format!(
                " at line {} column {} (byte {})",
                l.line(),
                l.column(),
                l.index()
            )
        })
        .unwrap_or_default();
    (at, strip_location(&e.to_string()))
}
