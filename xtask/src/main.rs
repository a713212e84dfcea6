//! Project automation for servio-pool: `cargo xtask test | bench | demo | ci`.

fn main() {
    println!("xtask");
}
