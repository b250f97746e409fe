//! The Sealpost mail gateway: an SMTP relay in the path of the organization's outbound mail.
//!
//! - [`smtp`] speaks the server side of ESMTP (PIPELINING, SIZE, 8BITMIME, SMTPUTF8,
//!   STARTTLS) and hands each complete message to a handler.
//! - [`process`] applies the mail-flow rules (`sealpost-rules`) per recipient, splits the
//!   message into one copy per group and protects the copies that must be encrypted (with
//!   `sealpost-core`).
//! - [`spool`] keeps accepted mail durably on disk until it is relayed or bounced.
//! - [`relay`] sends spooled copies to the next hop over SMTP; with `relay_first`,
//!   [`relay_first`] relays each message before answering its client and spools only what
//!   the next hop does not take.
//! - [`handler`] joins them for every message (process, transport decryption, spool, then
//!   250); [`worker`] relays what is due, retries and bounces; [`daemon`] runs it all with
//!   [`metrics`] and [`config`] (the `[gateway]` table).
//! - [`reply`] is the reply endpoint (`POST /v1/replies`): portal-sealed replies,
//!   authorized by the key service, counter-signed and put through the same pipeline.
//! - [`transport`] decrypts our own protected mail for internal recipients when the tenant
//!   allows it; [`keyservice`] is the client of the key service's gateway endpoints.
//!
//! This crate never reads tenant key files itself: the caller (the `sealpost` CLI) loads the
//! tenant and passes the keys in.

#![forbid(unsafe_code)]

pub mod config;
pub mod daemon;
pub mod handler;
pub mod keyservice;
pub mod maildrop;
pub mod metrics;
pub mod process;
pub mod relay;
pub mod relay_first;
pub mod reply;
pub mod smtp;
pub mod spool;
pub mod transport;
pub mod worker;
