//! The sandbox init is started once per sandbox: link it as a position-
//! dependent executable without symbols, which the loader maps and relocates
//! faster.
fn main() {
    println!("cargo:rustc-link-arg-bin=skybridge-jail-init=-no-pie");
    println!("cargo:rustc-link-arg-bin=skybridge-jail-init=-Wl,--strip-all");
}
