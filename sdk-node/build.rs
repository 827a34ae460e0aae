//! Node-API link settings (on Linux: `-z nodelete`, so the addon is never
//! unmapped while runtime threads may still run its code).
fn main() {
    napi_build::setup();
}
