//! The `[[north]]` keys that get an uplink through to its server: `headers`, `auth`,
//! `subprotocols`, `proxy`, and credentials written in the URL. They become the
//! `ConnectOptions` of the uplink's connections.
//!
//! Header values are often credentials: they may come from `env:NAME` or `file:/path`
//! (as `keypass` does), and no message here ever contains one; only header names are
//! shown.

use tagwire_ws_client::{check_header, Compression, ConnectOptions, Proxy, UserInfo, WsUrl};
use toml::Value;
use tracing::warn;

/// The raw values of the keys, as found in the `[[north]]` table.
#[derive(Default)]
pub(crate) struct ReachKeys<'a> {
    /// `headers = { Name = "value", ... }`.
    pub headers: Option<&'a Value>,
    /// `auth = { bearer = "..." }` or `auth = { user = "...", password = "..." }`.
    pub auth: Option<&'a Value>,
    /// `subprotocols = ["...", ...]`.
    pub subprotocols: Option<&'a Value>,
    /// `proxy = "http://..." | "socks5://..." | "socks5h://..." | "env" | "none"`.
    pub proxy: Option<&'a Value>,
    /// `compression = "deflate" | "off"`.
    pub compression: Option<&'a Value>,
}

/// Checks the keys of the `[[north]]` at `path` and sets the headers and proxy of
/// `connect`. `userinfo` is what the URL carried before `@`, if anything. Problems
/// are pushed, named by their key.
pub(crate) fn apply(
    path: &str,
    keys: ReachKeys<'_>,
    url: &WsUrl,
    userinfo: Option<UserInfo>,
    connect: &mut ConnectOptions,
    problems: &mut Vec<String>,
) {
    let mut headers = headers(path, keys.headers, problems);
    let has_header = |headers: &[(String, String)], name: &str| {
        headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name))
    };

    let mut authorization = auth(path, keys.auth, problems);
    if let Some(info) = userinfo {
        warn!(
            url = %url.for_logs(),
            "{path}.url: the URL contains user:password@, sent as Basic authentication; \
             a password in the configuration's URL is visible to anyone who can read the file \
             and, on the command line, in process listings: prefer `auth = {{ user = \"...\", password = \"env:NAME\" }}`"
        );
        if authorization.is_some() {
            problems.push(format!(
                "{path}.url: the URL carries user:password@ and `auth` is set too: keep one"
            ));
        }
        authorization = Some(info.basic_authorization());
    }
    if let Some(value) = authorization {
        if has_header(&headers, "authorization") {
            problems.push(format!(
                "{path}.headers: `Authorization` is set here and by `auth` (or the URL's user:password@): keep one"
            ));
        }
        headers.push(("Authorization".into(), value));
    }

    if let Some(protocols) = subprotocols(path, keys.subprotocols, problems) {
        if has_header(&headers, "sec-websocket-protocol") {
            problems.push(format!(
                "{path}.headers: `Sec-WebSocket-Protocol` is set here and by `subprotocols`: use `subprotocols` only"
            ));
        }
        headers.push(("Sec-WebSocket-Protocol".into(), protocols.join(", ")));
    }
    connect.extra_headers = headers;

    match keys.compression {
        None => {}
        Some(Value::String(text)) if text == "deflate" => connect.compression = Compression::Deflate,
        Some(Value::String(text)) if text == "off" => connect.compression = Compression::Off,
        Some(other) => problems.push(format!(
            "{path}.compression: {other} is not valid: use \"deflate\" (permessage-deflate, for metered links) or \"off\" (the default, as Neuron)"
        )),
    }

    match keys.proxy {
        None => {}
        Some(Value::String(text)) => match text.trim() {
            "none" | "" => connect.proxy = None,
            "env" => match Proxy::from_env(url, |name| std::env::var(name).ok()) {
                Ok(proxy) => connect.proxy = proxy,
                Err(e) => problems.push(format!(
                    "{path}.proxy: \"env\" picked a proxy from the environment (HTTPS_PROXY, http_proxy, ALL_PROXY) that cannot be used: {e}"
                )),
            },
            text => match Proxy::parse(text) {
                Ok(proxy) => connect.proxy = Some(proxy),
                Err(e) => problems.push(format!("{path}.proxy: {e}")),
            },
        },
        Some(other) => problems.push(format!(
            "{path}.proxy: expected a string (\"http://host:port\", \"socks5://host:port\", \"socks5h://host:port\", \"env\" or \"none\"), found {}",
            other.type_str()
        )),
    }
}

/// `headers`: a table of header names to values (secrets allowed).
fn headers(path: &str, value: Option<&Value>, problems: &mut Vec<String>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let Some(value) = value else {
        return out;
    };
    let Value::Table(table) = value else {
        problems.push(format!(
            "{path}.headers: expected a table such as {{ \"X-Site\" = \"7\" }}, found {}",
            value.type_str()
        ));
        return out;
    };
    for (name, value) in table {
        let key = format!("{path}.headers.{name}");
        let Value::String(text) = value else {
            problems.push(format!(
                "{key}: expected a string, found {}",
                value.type_str()
            ));
            continue;
        };
        let Some(value) = secret(&key, text, problems) else {
            continue;
        };
        match check_header(name, &value) {
            Ok(()) => out.push((name.clone(), value)),
            Err(reason) => problems.push(format!("{key}: {reason}")),
        }
    }
    out
}

/// `auth`: the value of an `Authorization` header, built from a bearer token or a
/// user and password.
fn auth(path: &str, value: Option<&Value>, problems: &mut Vec<String>) -> Option<String> {
    let value = value?;
    let usage = "use auth = { bearer = \"env:TOKEN\" } or auth = { user = \"...\", password = \"env:PASSWORD\" }";
    let Value::Table(table) = value else {
        problems.push(format!(
            "{path}.auth: expected a table, found {}: {usage}",
            value.type_str()
        ));
        return None;
    };
    for key in table.keys() {
        if !["bearer", "user", "password"].contains(&key.as_str()) {
            problems.push(format!("{path}.auth.{key}: unknown key: {usage}"));
        }
    }
    let field = |name: &str, problems: &mut Vec<String>| match table.get(name) {
        None => None,
        Some(Value::String(text)) => secret(&format!("{path}.auth.{name}"), text, problems),
        Some(other) => {
            problems.push(format!(
                "{path}.auth.{name}: expected a string, found {}",
                other.type_str()
            ));
            None
        }
    };
    let has = |name| table.contains_key(name);
    if has("bearer") {
        if has("user") || has("password") {
            problems.push(format!(
                "{path}.auth: `bearer` and `user`/`password` are both set: keep one"
            ));
            return None;
        }
        let token = field("bearer", problems)?;
        return Some(format!("Bearer {}", token.trim()));
    }
    if !has("user") {
        problems.push(format!(
            "{path}.auth: neither `bearer` nor `user` is set: {usage}"
        ));
        return None;
    }
    let user = field("user", problems)?;
    if user.contains(':') {
        problems.push(format!(
            "{path}.auth.user: a user name in Basic authentication cannot contain `:`"
        ));
        return None;
    }
    let password = if has("password") {
        field("password", problems)?
    } else {
        String::new()
    };
    Some(UserInfo::new(user, password).basic_authorization())
}

/// `subprotocols`: a non-empty list of tokens, offered in order.
fn subprotocols(
    path: &str,
    value: Option<&Value>,
    problems: &mut Vec<String>,
) -> Option<Vec<String>> {
    let key = format!("{path}.subprotocols");
    let Value::Array(items) = value? else {
        problems.push(format!(
            "{key}: expected a list such as [\"neuron.v1\"], found {}",
            value?.type_str()
        ));
        return None;
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        match item {
            // RFC 6455 section 4.1: each is an HTTP token (RFC 7230 tchar).
            Value::String(p)
                if !p.is_empty()
                    && p.bytes().all(|b| {
                        b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
                    }) =>
            {
                out.push(p.clone())
            }
            Value::String(p) => problems.push(format!(
                "{key}[{i}]: {p:?} is not a valid subprotocol name: use letters, digits and !#$%&'*+-.^_`|~ only (no spaces or commas)"
            )),
            other => problems.push(format!("{key}[{i}]: expected a string, found {}", other.type_str())),
        }
    }
    if items.is_empty() {
        problems.push(format!(
            "{key}: the list is empty: remove the key or name a subprotocol"
        ));
        return None;
    }
    Some(out)
}

/// A value that may be a secret: `env:NAME` (an environment variable), `file:/path`
/// (the file's first line) or the value itself. Errors name `key` and never contain
/// the value.
fn secret(key: &str, text: &str, problems: &mut Vec<String>) -> Option<String> {
    let result = if let Some(name) = text.strip_prefix("env:") {
        match std::env::var(name) {
            Ok(v) if !v.is_empty() => Ok(v),
            Ok(_) => Err(format!("the environment variable {name} is empty")),
            Err(std::env::VarError::NotPresent) => Err(format!(
                "the environment variable {name} is not set: set it in tagwire's environment (e.g. the systemd unit's Environment= or EnvironmentFile=)"
            )),
            Err(std::env::VarError::NotUnicode(_)) => {
                Err(format!("the environment variable {name} is not valid UTF-8"))
            }
        }
    } else if let Some(file) = text.strip_prefix("file:") {
        match std::fs::read_to_string(file) {
            Ok(content) => match content.lines().next().map(str::trim_end) {
                Some(line) if !line.is_empty() => Ok(line.to_owned()),
                _ => Err(format!(
                    "the file {file} is empty (the value is its first line)"
                )),
            },
            Err(e) => Err(format!("cannot read the file {file}: {e}")),
        }
    } else {
        Ok(text.to_owned())
    };
    result
        .map_err(|e| problems.push(format!("{key}: {e}")))
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(toml_text: &str, url: &str) -> (ConnectOptions, Vec<String>) {
        let table: toml::Table = toml_text.parse().unwrap();
        let keys = ReachKeys {
            headers: table.get("headers"),
            auth: table.get("auth"),
            subprotocols: table.get("subprotocols"),
            proxy: table.get("proxy"),
            compression: table.get("compression"),
        };
        let (url, info) = WsUrl::parse_with_userinfo(url).unwrap();
        let mut connect = ConnectOptions::default();
        let mut problems = Vec::new();
        apply("north[0]", keys, &url, info, &mut connect, &mut problems);
        (connect, problems)
    }

    fn header<'a>(c: &'a ConnectOptions, name: &str) -> Option<&'a str> {
        c.extra_headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn headers_auth_and_subprotocols_become_request_headers() {
        std::env::set_var("TAGWIRE_TEST_REACH_TOKEN", "t0ken");
        let (c, p) = run(
            "headers = { \"X-Site\" = \"7\" }\nauth = { bearer = \"env:TAGWIRE_TEST_REACH_TOKEN\" }\nsubprotocols = [\"neuron.v1\", \"json\"]\nproxy = \"socks5h://127.0.0.1:1080\"\ncompression = \"deflate\"",
            "ws://h/",
        );
        assert!(p.is_empty(), "{p:?}");
        assert_eq!(header(&c, "x-site"), Some("7"));
        assert_eq!(header(&c, "authorization"), Some("Bearer t0ken"));
        assert_eq!(
            header(&c, "sec-websocket-protocol"),
            Some("neuron.v1, json")
        );
        assert_eq!(c.proxy.unwrap().to_string(), "socks5h://127.0.0.1:1080");
        assert_eq!(c.compression, Compression::Deflate);

        let (c, p) = run("auth = { user = \"ops\", password = \"pw\" }", "ws://h/");
        assert!(p.is_empty(), "{p:?}");
        assert_eq!(header(&c, "authorization"), Some("Basic b3BzOnB3"));
        let (c, p) = run("", "ws://ops:pw@h/");
        assert!(p.is_empty(), "{p:?}");
        assert_eq!(header(&c, "authorization"), Some("Basic b3BzOnB3"));
    }

    #[test]
    fn problems_are_named_and_never_show_secrets() {
        let (_, p) = run(
            "headers = { Host = \"s3cret-a\", \"X-Bad\" = \"s3cret\\nb\", \"X-Env\" = \"env:TAGWIRE_TEST_REACH_UNSET\", Authorization = \"Bearer s3cret-c\" }\n\
             auth = { bearer = \"s3cret-d\", password = \"s3cret-e\" }\n\
             subprotocols = [\"a b\", 3]\nproxy = \"ftp://u:s3cret-f@p:1\"\ncompression = \"gzip\"",
            "ws://h/",
        );
        let all = p.join("\n");
        for expected in [
            "north[0].headers.Host: set by the WebSocket handshake itself",
            "north[0].headers.X-Bad: value contains characters not allowed",
            "north[0].headers.X-Env: the environment variable TAGWIRE_TEST_REACH_UNSET is not set",
            "north[0].auth: `bearer` and `user`/`password` are both set",
            "north[0].subprotocols[0]: \"a b\" is not a valid subprotocol name",
            "north[0].subprotocols[1]: expected a string",
            "north[0].proxy: invalid proxy",
            "north[0].compression: \"gzip\" is not valid: use \"deflate\"",
        ] {
            assert!(all.contains(expected), "missing {expected:?} in:\n{all}");
        }
        assert!(!all.contains("s3cret"), "{all}");

        let (_, p) = run("auth = { user = \"a\" }", "ws://u:pw@h/");
        assert!(
            p[0].contains("north[0].url: the URL carries user:password@ and `auth`"),
            "{p:?}"
        );
        let (_, p) = run(
            "headers = { authorization = \"x\" }\nauth = { user = \"a\" }",
            "ws://h/",
        );
        assert!(
            p[0].starts_with("north[0].headers: `Authorization` is set here and by `auth`"),
            "{p:?}"
        );
    }
}
