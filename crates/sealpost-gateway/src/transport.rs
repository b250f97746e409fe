//! Transport decryption: our own protected mail, delivered decrypted to internal recipients.
//!
//! [`crate::process`] says which copies may be decrypted ([`Decryptable`]); this module asks
//! the key service (`/v1/gateway/transport/rewrap`) for share B once per internal recipient,
//! each time with a new ephemeral P-256 key, opens it with the core's rewrap helpers, decrypts
//! the payload once with the core, and moves the recipients it was released for into a copy
//! that carries the decrypted message ([`Decryptable::decrypted_copy`]). A recipient the key
//! service refuses, or every remaining one once it is unreachable or the time for the message
//! ([`Transport::deadline`]) has run out, keeps the wrapper unchanged; so does every recipient
//! of a message whose decrypted `From` is not the sender sealed in its (signed) header, since
//! a reply's header fields are written by the replier's browser. Outcomes are logged
//! (message id, recipient, reason; never content) and counted.
//!
//! It runs on the blocking thread that processes the message and waits for the key service
//! through the runtime's handle; every request is bounded by the client's timeout and all of
//! them together by the deadline, so an SMTP session never waits on it for long.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use mail_parser::{HeaderName, HeaderValue, MessageParser};
use sealpost_core::Envelope;
use sealpost_core::policy::normalize_address;
use sealpost_core::rewrap::{ClientSecretKey, open_share};
use zeroize::Zeroizing;

use crate::keyservice::{KeyServiceClient, KeyServiceError, Sealed, TransportRequest, ip_text};
use crate::metrics::Metrics;
use crate::process::{Copy, Decryptable};

/// Default time all the key-service calls of one message may take together.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(30);

/// The key service client and the time budget per message.
#[derive(Debug, Clone)]
pub struct Transport {
    /// The key service's gateway endpoints.
    pub client: KeyServiceClient,
    /// Longest time for all rewraps of one message.
    pub deadline: Duration,
}

/// What happened for one recipient.
enum Step {
    Released(Zeroizing<[u8; 32]>),
    Refused(String),
    Failed(String),
}

impl Transport {
    /// Decrypts `d` for the internal recipients of its candidate copies where the key service
    /// allows it, rewriting `copies` (see the module docs). Must run inside a tokio runtime's
    /// blocking thread (`spawn_blocking`).
    pub fn apply(
        &self,
        d: &Decryptable,
        copies: &mut Vec<Copy>,
        client_ip: Option<IpAddr>,
        metrics: &Metrics,
    ) {
        let Ok(env) = Envelope::parse(&d.envelope) else {
            return;
        };
        let handle = tokio::runtime::Handle::current();
        let sealed = Sealed::new(env.header_bytes(), env.license());
        let started = Instant::now();
        let mut rng = rand_core::UnwrapErr(getrandom::SysRng);
        let mut plaintext: Option<Zeroizing<Vec<u8>>> = None;
        let mut stop: Option<String> = None;
        let mut released: Vec<Vec<String>> = vec![Vec::new(); d.candidates.len()];
        for (i, c) in d.candidates.iter().enumerate() {
            for (spelled, normalized) in &c.recipients {
                let step = match &stop {
                    Some(reason) => Step::Failed(reason.clone()),
                    None => {
                        let left = self.deadline.saturating_sub(started.elapsed());
                        let key = ClientSecretKey::generate(&mut rng);
                        let req = TransportRequest {
                            recipient: normalized,
                            sealed: &sealed,
                            client_public_key: B64.encode(key.public_key().to_bytes()),
                            client_ip: client_ip.map(ip_text),
                        };
                        let answer = handle.block_on(tokio::time::timeout(
                            left,
                            self.client.transport_rewrap(&req),
                        ));
                        match answer {
                            Err(_) => Step::Failed("no time left for this message".into()),
                            Ok(Err(KeyServiceError::Refused { code, .. })) => {
                                Step::Refused(code.code().to_string())
                            }
                            Ok(Err(e)) => Step::Failed(e.to_string()),
                            Ok(Ok(share)) => open(&key, &env, &share.sealed_share),
                        }
                    }
                };
                let step = match step {
                    Step::Released(share) if plaintext.is_none() => match env.decrypt(&share) {
                        Ok(p) if from_is_sender(&p, &env.header().sender) => {
                            plaintext = Some(p);
                            Step::Released(share)
                        }
                        Ok(_) => Step::Failed(
                            "the decrypted message's From is not the sender sealed in its header"
                                .into(),
                        ),
                        Err(e) => Step::Failed(format!("the payload does not decrypt: {e}")),
                    },
                    other => other,
                };
                match step {
                    Step::Released(_) => {
                        Metrics::inc(&metrics.transport_decrypted);
                        tracing::info!(message_id = %d.message_id, recipient = %normalized, "transport decryption: delivered decrypted");
                        released[i].push(spelled.clone());
                    }
                    Step::Refused(code) => {
                        Metrics::inc(&metrics.transport_refused);
                        tracing::warn!(message_id = %d.message_id, recipient = %normalized, reason = %code, "transport decryption refused by the key service; the protected wrapper is delivered");
                    }
                    Step::Failed(reason) => {
                        Metrics::inc(&metrics.transport_failed);
                        tracing::warn!(message_id = %d.message_id, recipient = %normalized, reason = %reason, "transport decryption failed; the protected wrapper is delivered");
                        // Unreachable, too slow or undecryptable: the others would only wait.
                        stop.get_or_insert(reason);
                    }
                }
            }
        }
        let Some(plaintext) = plaintext else { return };
        for (c, who) in d.candidates.iter().zip(released) {
            if who.is_empty() {
                continue;
            }
            copies[c.copy].recipients.retain(|r| !who.contains(r));
            copies.push(Copy {
                recipients: who,
                data: d.decrypted_copy(c, &plaintext),
                label: "decrypted (transport decryption)".into(),
                encrypted: false,
            });
        }
        copies.retain(|c| !c.recipients.is_empty());
    }
}

/// Whether every `From` address of `message` is `sender` (compared normalized), and there is
/// at least one. A decrypted copy is delivered with the payload's own header, and the payload
/// of a reply was written by the replier's browser: without this check an outside recipient
/// could reply "From" any internal address and have it delivered readable, past the
/// organization's inbound checks, which see only the wrapper.
fn from_is_sender(message: &[u8], sender: &str) -> bool {
    let Some(parsed) = MessageParser::default().parse_headers(message) else {
        return false;
    };
    let sender = normalize_address(sender);
    let mut any = false;
    for value in parsed.header_values(HeaderName::From) {
        let HeaderValue::Address(list) = value else {
            return false;
        };
        for addr in list.iter() {
            if addr.address().map(normalize_address).as_deref() != Some(sender.as_str()) {
                return false;
            }
            any = true;
        }
    }
    any
}

/// Opens the sealed share B of a transport answer.
fn open(key: &ClientSecretKey, env: &Envelope<'_>, sealed_b64: &str) -> Step {
    let Ok(sealed) = B64.decode(sealed_b64) else {
        return Step::Failed("the key service's sealed share is not base64".into());
    };
    match open_share(key, env.header_bytes(), &sealed) {
        Ok(share) => Step::Released(share),
        Err(_) => Step::Failed("the key service's sealed share does not open".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::from_is_sender;

    #[test]
    fn the_decrypted_from_must_be_the_sealed_sender() {
        let bob = "bob@other.example";
        for good in [
            &b"From: bob@other.example\r\nTo: a@acme.example\r\n\r\nHi\r\n"[..],
            b"From: Bob <BOB@Other.Example>\r\n\r\nHi\r\n",
            b"From: bob@other.example\nSubject: x\n\nHi\n",
        ] {
            assert!(
                from_is_sender(good, bob),
                "{}",
                String::from_utf8_lossy(good)
            );
        }
        for bad in [
            &b"From: ceo@acme.example\r\n\r\nHi\r\n"[..],
            b"From: \"bob@other.example\" <ceo@acme.example>\r\n\r\nHi\r\n",
            b"From: bob@other.example, ceo@acme.example\r\n\r\nHi\r\n",
            b"From: bob@other.example\r\nFrom: ceo@acme.example\r\n\r\nHi\r\n",
            b"To: a@acme.example\r\n\r\nNo From at all\r\n",
            b"",
        ] {
            assert!(
                !from_is_sender(bad, bob),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
