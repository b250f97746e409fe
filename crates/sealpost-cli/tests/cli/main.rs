//! The real `sealpost` binary, run in temporary directories: tenant creation, the
//! encrypt → inspect → decrypt round trip on the self-made fixtures, templates and explicit
//! recipients, and every way input can be wrong.
//!
//! Every failure must look the same to a script: exit status 1, nothing on stdout, exactly
//! one line on stderr starting with `sealpost: error:`, and never a panic.
//!
//! One test binary, one module per theme; the helpers that run the binary and read its
//! output are in `common`.

mod common;
mod decrypt;
mod encrypt;
mod gateway_cmd;
mod gateway_crash;
mod gateway_harness;
mod gateway_postfix;
mod help;
mod inspect;
mod keyservice;
mod restart;
mod roundtrip;
mod rules;
mod smtp;
mod tenant_init;
