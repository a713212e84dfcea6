//! `poolctl`: the servio-pool operator CLI.

fn main() {
    println!("poolctl {}", env!("CARGO_PKG_VERSION"));
}
