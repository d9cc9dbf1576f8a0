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
    // A new commit moves HEAD's ref: build again to name it.
    if let Some(head) = git(&["rev-parse", "--git-path", "HEAD"]) {
        println!("cargo:rerun-if-changed={head}");
    }
    if let Some(reference) = git(&["symbolic-ref", "-q", "HEAD"])
        && let Some(path) = git(&["rev-parse", "--git-path", &reference])
    {
        println!("cargo:rerun-if-changed={path}");
    }
}
