//! Which south node / group pairs an uplink receives.
//!
//! Neuron subscribes an app node to (driver, group) pairs; tagwire does the same, and
//! also accepts `*` wildcards so that one entry can follow groups added later.

/// One subscription: a south node pattern and a group pattern. `*` matches any run of
/// characters (including none); everything else matches itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subscription {
    /// South node name pattern.
    pub node: String,
    /// Group name pattern.
    pub group: String,
}

impl Subscription {
    /// A subscription to `group` of `node` (either may contain `*`).
    pub fn new(node: impl Into<String>, group: impl Into<String>) -> Self {
        Self {
            node: node.into(),
            group: group.into(),
        }
    }

    /// Whether a snapshot of `node`/`group` is wanted.
    pub fn matches(&self, node: &str, group: &str) -> bool {
        glob_match(&self.node, node) && glob_match(&self.group, group)
    }
}

/// The subscriptions of one uplink; empty means "everything".
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Subscriptions(pub Vec<Subscription>);

impl Subscriptions {
    /// Whether a snapshot of `node`/`group` goes to this uplink.
    pub fn matches(&self, node: &str, group: &str) -> bool {
        self.0.is_empty() || self.0.iter().any(|s| s.matches(node, group))
    }

    /// Whether some group of the south node `node` goes to this uplink: the nodes whose
    /// states a driver-state message reports.
    pub fn takes_node(&self, node: &str) -> bool {
        self.0.is_empty() || self.0.iter().any(|s| glob_match(&s.node, node))
    }
}

/// `*`-only glob matching, linear time (the classic backtrack-to-last-star algorithm).
fn glob_match(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("*", ""));
        assert!(glob_match("*", "anything"));
        assert!(glob_match("plc-*", "plc-1"));
        assert!(!glob_match("plc-*", "modbus"));
        assert!(glob_match("a*c*e", "abcde"));
        assert!(!glob_match("a*c*e", "abcdf"));
        assert!(glob_match("exact", "exact"));
        assert!(!glob_match("exact", "exactly"));
    }

    #[test]
    fn empty_subscriptions_take_everything() {
        assert!(Subscriptions::default().matches("x", "y"));
        let subs = Subscriptions(vec![Subscription::new("sim", "fast*")]);
        assert!(subs.matches("sim", "fast-1"));
        assert!(!subs.matches("sim", "slow"));
        assert!(!subs.matches("modbus", "fast"));
        assert!(subs.takes_node("sim"));
        assert!(!subs.takes_node("modbus"));
        assert!(Subscriptions::default().takes_node("modbus"));
    }
}
