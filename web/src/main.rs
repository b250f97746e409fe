//! The portal's entry point for Trunk: mounts the app (wasm32 only; natively it does nothing).

#![forbid(unsafe_code)]

fn main() {
    // In the OpenID sign-in popup, back from the provider: hand the code over and close.
    #[cfg(target_arch = "wasm32")]
    if !sealpost_portal::oidc::relay_redirect() {
        sealpost_portal::mount();
    }
}
