//! The portal's entry point for Trunk: mounts the app (wasm32 only; natively it does nothing).

#![forbid(unsafe_code)]

fn main() {
    #[cfg(target_arch = "wasm32")]
    sealpost_portal::mount();
}
