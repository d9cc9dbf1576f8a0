// Re-run when migrations change, so `sqlx::migrate!()` embeds new files;
// and name the commit the binary is built from (`--version`, the
// `switchyard_build_info` metric), when built in a git checkout.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
    println!("cargo:rerun-if-env-changed=SWITCHYARD_COMMIT");
    if std::env::var_os("SWITCHYARD_COMMIT").is_some() {
        return;
    }
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let Some(commit) = git(&["rev-parse", "--short=12", "HEAD"]) else {
        println!("cargo:rustc-env=SWITCHYARD_COMMIT=unknown");
        return;
    };
    println!("cargo:rustc-env=SWITCHYARD_COMMIT={commit}");
    // A new commit moves HEAD's ref: build again to name it. Only files that
    // exist are watched (a packed ref has none, and a missing file would make
    // cargo run this script at every build).
    let watch = |path: Option<String>| {
        if let Some(p) = path.filter(|p| std::path::Path::new(p).exists()) {
            println!("cargo:rerun-if-changed={p}");
        }
    };
    watch(git(&["rev-parse", "--git-path", "HEAD"]));
    watch(git(&["rev-parse", "--git-path", "packed-refs"]));
    if let Some(reference) = git(&["symbolic-ref", "-q", "HEAD"]) {
        watch(git(&["rev-parse", "--git-path", &reference]));
    }
}
