//! `skybridge-jail-init`: pid 1 of every Linux sandbox (see
//! `skybridge_jail::linux::init`). Not meant to be run by hand: the server
//! starts it with the file descriptors it expects.

#[cfg(target_os = "linux")]
fn main() {
    skybridge_jail::linux::init::main()
}

#[cfg(not(target_os = "linux"))]
fn main() {
    eprintln!("skybridge-jail-init runs only on Linux");
    std::process::exit(2);
}
