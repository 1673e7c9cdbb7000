//! `credential_live`: a credential found leaked in a log (in a query string, a
//! body, a response, a text line: anywhere but the request's own auth header)
//! and later presented as a request's credential with a 2xx response. Evidence
//! from the logs alone: nothing is ever sent to the credential's issuer.

use super::access::Access;
use super::eval::{Alert, Compiled, Ctx, Slot, us};
use super::params::CredentialLive;
use super::state::rule_key;
use std::sync::Arc;

/// Per-credential state.
#[derive(Debug)]
pub(crate) struct State {
    leaked_at: i64,
    leak_location: Arc<str>,
    fired: bool,
}

impl State {
    pub(crate) fn heap_bytes(&self) -> usize {
        0
    }
}

/// Evaluate one access.
pub(crate) fn observe(
    idx: usize,
    rule: &Compiled,
    p: &CredentialLive,
    a: &Access,
    cx: &mut Ctx<'_>,
) {
    let t = cx.now;
    if a.success() {
        for c in a.credentials_used() {
            let k = rule_key(idx, c.state_key());
            let Some(Slot::Credential(st)) = cx.state.get_mut(k) else {
                continue;
            };
            if st.fired || t.saturating_sub(st.leaked_at) < us(p.min_delay_ms) {
                continue;
            }
            st.fired = true;
            let leaked_at = st.leaked_at;
            let alert = Alert {
                key_canon: String::new(),
                masked: c.masked.to_string(),
                value_hmac: Some(c.hmac.to_string()),
                location: "credential",
                start: leaked_at,
                detail: serde_json::json!({
                    "credential_kind": &*c.kind,
                    "leaked_at_us": leaked_at,
                    "leak_location": &*st.leak_location,
                    "used_at_us": t,
                    "use_location": &*c.location,
                    "delay_ms": t.saturating_sub(leaked_at) / 1000,
                }),
            };
            cx.emit(rule, a, alert);
        }
    }
    for c in a.credentials_leaked() {
        let k = rule_key(idx, c.state_key());
        cx.state.get_or_insert_with(k, || {
            Slot::Credential(Box::new(State {
                leaked_at: t,
                leak_location: c.location.clone(),
                fired: false,
            }))
        });
    }
}
