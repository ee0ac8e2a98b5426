//! The three views of the metrics registry: the OpenMetrics text of `GET /metrics`,
//! the per-uplink object of `GET /api/v1/nodes` and the final-counts log line. Each
//! iterates [`Family::ALL`], so a metric shows in all three or in none.

use prometheus_client::registry::Registry;
use tagwire_pipeline::{Family, Sample, Uplink};

/// The content type of [`exposition`].
pub const EXPOSITION_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The OpenMetrics text of `registry` (which Prometheus scrapes natively).
pub fn exposition(registry: &Registry) -> String {
    let mut out = String::new();
    // Writing to a String cannot fail; a collector error would be a bug in ours.
    if let Err(e) = prometheus_client::encoding::text::encode(&mut out, registry) {
        tracing::error!(error = %e, "cannot encode the metrics");
    }
    out
}

/// The metrics of one uplink as JSON members, named as in the exposition.
pub fn node_json(uplink: &Uplink) -> serde_json::Map<String, serde_json::Value> {
    Family::ALL
        .into_iter()
        .map(|family| {
            let value = match uplink.metrics().sample(family, uplink.queue()) {
                Sample::One(v) => serde_json::json!(v),
                Sample::Labelled { values, .. } => values
                    .iter()
                    .map(|(l, v)| (l.to_string(), serde_json::json!(v)))
                    .collect::<serde_json::Map<_, _>>()
                    .into(),
            };
            (family.name().to_string(), value)
        })
        .collect()
}

/// The fields of the final-counts line: `queued=N delivered=N resent=N refused=N
/// dropped=none|reason=N,... still_queued=N` and every other metric by its name, where
/// `queued = delivered + dropped + still_queued` (see the README's counter table).
pub fn final_counts(uplink: &Uplink) -> String {
    let mut fields = Vec::new();
    // The fields that say what became of the data come first, as they always did.
    let first = [
        Family::QueuedMsgs,
        Family::SendMsgs,
        Family::ResentMsgs,
        Family::RefusedMsgs,
        Family::DroppedMsgs,
    ];
    let rest = Family::ALL.into_iter().filter(|f| !first.contains(f));
    for family in first.into_iter().chain(rest) {
        let value = match uplink.metrics().sample(family, uplink.queue()) {
            Sample::One(v) => v.to_string(),
            Sample::Labelled { values, .. } => {
                let nonzero: Vec<String> = values
                    .iter()
                    .filter(|(_, v)| *v > 0)
                    .map(|(l, v)| format!("{l}={v}"))
                    .collect();
                if nonzero.is_empty() {
                    "none".to_string()
                } else {
                    nonzero.join(",")
                }
            }
        };
        fields.push(format!("{}={value}", family.final_count_field()));
        if family == Family::DroppedMsgs {
            // The last term of `queued = delivered + dropped + still_queued`.
            fields.push(format!("still_queued={}", uplink.kept_at_stop()));
        }
    }
    fields.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use tagwire_pipeline::{DropReason, Kind, UplinkConfig};

    /// Every family gets a distinct non-zero value where the test can set one, and every
    /// view must show every family: a metric added to `Family` but left out of a view,
    /// or a view that stops iterating `Family::ALL`, fails here.
    #[tokio::test]
    async fn every_metric_shows_in_every_view() {
        let url = "ws://127.0.0.1:9/".parse().unwrap();
        let uplink = Uplink::open(UplinkConfig::new("n\"1", url)).await.unwrap();
        for (i, family) in Family::ALL.into_iter().enumerate() {
            if family.kind() == Kind::Counter
                && !matches!(family, Family::DroppedMsgs | Family::DriverStateMsgs)
            {
                uplink.metrics().add(family, 100 + i as u64);
            }
        }
        uplink.metrics().add_dropped(DropReason::TooLarge, 7);
        let registry = tagwire_pipeline::metrics::registry(vec![uplink.clone()]);
        let text = exposition(&registry);
        let json = node_json(&uplink);
        let line = final_counts(&uplink);
        for family in Family::ALL {
            let name = family.name();
            let series = format!("{name}{{node=\"n\\\"1\"");
            assert!(
                text.contains(&series),
                "{name} missing from /metrics:\n{text}"
            );
            assert!(
                json.contains_key(name),
                "{name} missing from nodes: {json:?}"
            );
            let field = format!("{}=", family.final_count_field());
            assert!(
                line.contains(&field),
                "{name} missing from final counts: {line}"
            );
            if let Sample::One(v) = uplink.metrics().sample(family, uplink.queue()) {
                assert!(
                    text.contains(&format!("{series}}} {v}\n")),
                    "{name} value:\n{text}"
                );
                assert_eq!(json[name], v, "{name}");
                assert!(
                    line.contains(&format!("{field}{v}")),
                    "{name} value: {line}"
                );
            }
        }
        assert!(text.contains("dropped_msgs_total{node=\"n\\\"1\",reason=\"too_large\"} 7"));
        assert_eq!(json["dropped_msgs_total"]["too_large"], 7);
        assert!(line.contains("dropped=too_large=7"), "{line}");
        assert!(line.contains("refused="), "{line}");
    }
}
