//! The bounded reader every loader goes through: size caps before and while reading, endless
//! inputs refused, and the loaders' messages naming the file and the cap.

use std::process::Command;

use sparsefield::compute::files::{self, FileKind};

use super::common::temp_dir;

const TINY: FileKind = FileKind { name: "a test file", max_bytes: 1000 };

#[test]
fn a_file_within_its_cap_is_read_whole() {
    let dir = temp_dir("files_within");
    let path = dir.join("ok.bin");
    let data: Vec<u8> = (0..1000_u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&path, &data).unwrap();
    assert_eq!(files::read_capped(&path, TINY).unwrap(), data);
    std::fs::write(&path, "héllo").unwrap();
    assert_eq!(files::read_text_capped(&path, TINY).unwrap(), "héllo");
}

#[test]
fn a_file_over_its_cap_is_refused_with_its_size_and_the_cap() {
    let dir = temp_dir("files_over");
    let path = dir.join("big.bin");
    std::fs::write(&path, vec![7_u8; 3 << 20]).unwrap();
    let small = FileKind { name: "a test file", max_bytes: 1 << 20 };
    let err = files::read_capped(&path, small).unwrap_err().to_string();
    assert!(err.contains("3 MiB") && err.contains("a test file") && err.contains("(1 MiB)"), "{err}");
    // One byte over is over.
    std::fs::write(&path, vec![0_u8; 1001]).unwrap();
    assert!(files::read_capped(&path, TINY).is_err());
    // Text that is not UTF-8 says where.
    std::fs::write(&path, b"abc\xffdef").unwrap();
    let err = files::read_text_capped(&path, TINY).unwrap_err().to_string();
    assert!(err.contains("UTF-8") && err.contains("offset 3"), "{err}");
}

#[test]
fn endless_inputs_stop_at_the_cap() {
    // A reader without an end (a device, a pipe, a decompression bomb) is cut at the cap + 1 byte.
    let err = files::read_capped_from(std::io::repeat(0), TINY).unwrap_err().to_string();
    assert!(err.contains("more than a test file may") && err.contains("MiB"), "{err}");
    #[cfg(unix)]
    {
        let err = files::read_capped(std::path::Path::new("/dev/zero"), TINY).unwrap_err().to_string();
        assert!(err.contains("more than"), "{err}");
    }
}

#[cfg(unix)]
#[test]
fn loaders_refuse_an_endless_file_by_name() {
    let zero = std::path::Path::new("/dev/zero");
    let err = sparsefield::compute::inr::SirenWeights::load(zero).unwrap_err().to_string();
    assert!(err.contains("/dev/zero") && err.contains("64 MiB"), "{err}");
    let err = sparsefield::compute::ntk::load_points_csv(zero).unwrap_err().to_string();
    assert!(err.contains("/dev/zero") && err.contains("256 MiB"), "{err}");

    // The command line: an error naming the file, a non-zero exit, no gigabytes read.
    let out = temp_dir("files_cli").join("never.png");
    let output = Command::new(env!("CARGO_BIN_EXE_sparsefield"))
        .args(["inr", "render", "--inr", "/dev/zero", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "should have failed: {stderr}");
    assert!(stderr.contains("/dev/zero") && stderr.contains("64 MiB"), "{stderr}");
    assert!(!out.exists(), "nothing is written");
}

#[test]
fn atomic_writes_replace_the_target_whole_or_not_at_all() {
    use std::io::Write;
    let dir = temp_dir("files_atomic");
    let path = dir.join("out.csv");
    files::write_atomic(&path, "first\n").unwrap();
    files::write_atomic(&path, "second\n").unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "second\n");

    // A write abandoned half way (an encoder failing, a cancelled export) leaves the old file as it
    // was and no temporary file behind.
    let mut file = files::AtomicFile::create(&path).unwrap();
    file.write_all(b"half of a ").unwrap();
    drop(file);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "second\n");
    let names: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, vec![std::ffi::OsString::from("out.csv")], "only the target is left");

    // A missing folder is an error, not a panic.
    assert!(files::write_atomic(dir.join("missing").join("x.csv"), "x").is_err());

    // A symbolic link stays a link; the file it points to gets the new content.
    #[cfg(unix)]
    {
        let link = dir.join("link.csv");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        files::write_atomic(&link, "third\n").unwrap();
        assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "third\n");
    }
}

#[cfg(unix)]
#[test]
fn a_full_disk_is_an_error_and_devices_are_written_in_place() {
    use std::os::unix::fs::FileTypeExt;
    // /dev/full fails every write with "no space left on device".
    let full = std::path::Path::new("/dev/full");
    let err = files::write_atomic(full, vec![1_u8; 100]).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(28), "ENOSPC: {err}");
    assert!(std::fs::metadata(full).unwrap().file_type().is_char_device(), "/dev/full is still a device");
    let err = files::write_atomic(full, vec![1_u8; 100_000]).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(28), "ENOSPC: {err}");
    // Writing to /dev/null works in place, and leaves the device alone.
    files::write_atomic("/dev/null", b"nothing").unwrap();
    assert!(std::fs::metadata("/dev/null").unwrap().file_type().is_char_device());

    // The command line reports the failure instead of printing "wrote".
    let dir = temp_dir("files_full_cli");
    let inr = dir.join("tiny.safetensors");
    sparsefield::compute::inr::SirenWeights::init(sparsefield::compute::inr::SirenConfig::image(1, 8, 1, 30.0), 0)
        .save(&inr, &[])
        .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_sparsefield"))
        .args(["inr", "render", "--width", "16", "--height", "16", "--inr"])
        .arg(&inr)
        .args(["--out", "/dev/full"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "should have failed: {}", String::from_utf8_lossy(&output.stdout));
    assert!(stderr.contains("/dev/full") && stderr.contains("space"), "{stderr}");
}

#[test]
fn an_error_and_its_causes_are_said_once_each() {
    use sparsefield::compute::errors::describe;
    // A loader error that says its cause in its own text and also chains it.
    let missing = std::path::Path::new("/nonexistent/never.safetensors");
    let error = anyhow::Error::from(sparsefield::compute::inr::SirenWeights::load(missing).unwrap_err());
    let message = describe(error.as_ref());
    assert!(message.contains("never.safetensors"), "{message}");
    assert_eq!(message.matches("No such file or directory").count(), 1, "{message}");
    // Context that adds something new keeps every part, outermost first.
    let error = anyhow::Error::from(std::io::Error::other("disk on fire")).context("writing out.png");
    assert_eq!(describe(error.as_ref()), "writing out.png: disk on fire");

    // The command line prints the same.
    let output = Command::new(env!("CARGO_BIN_EXE_sparsefield"))
        .args(["inr", "render", "--inr", "/nonexistent/never.safetensors", "--out"])
        .arg(temp_dir("files_errors").join("x.png"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert_eq!(stderr.matches("No such file or directory").count(), 1, "{stderr}");
}

#[test]
fn outputs_never_go_into_the_inputs_and_data_sets_are_not_replaced_without_force() {
    let dir = temp_dir("files_apart");
    let data = dir.join("scene");
    let run = |args: &[&std::ffi::OsStr]| Command::new(env!("CARGO_BIN_EXE_sparsefield")).args(args).output().unwrap();
    let os = |s: &str| std::ffi::OsString::from(s);
    let make = |force: bool| {
        let views = if force { "1" } else { "2" };
        let mut args =
            vec![os("nerf"), os("make-dataset"), os("--size"), os("16"), os("--views"), os(views), os("--out")];
        args.push(data.clone().into_os_string());
        if force {
            args.push(os("--force"));
        }
        let refs: Vec<&std::ffi::OsStr> = args.iter().map(std::ffi::OsString::as_os_str).collect();
        run(&refs)
    };
    let first = make(false);
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    let transforms = std::fs::read(data.join("transforms_train.json")).unwrap();
    // A second make-dataset into the same folder is refused without --force ...
    let again = make(false);
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(!again.status.success() && stderr.contains("--force") && stderr.contains("already"), "{stderr}");
    assert_eq!(std::fs::read(data.join("transforms_train.json")).unwrap(), transforms);
    // ... and allowed with it: the old views go (none is left stale), the user's other files stay.
    std::fs::write(data.join("notes.txt"), "mine").unwrap();
    assert!(make(true).status.success());
    assert!(data.join("train/r_0.png").is_file() && !data.join("train/r_1.png").exists());
    assert_eq!(std::fs::read_to_string(data.join("notes.txt")).unwrap(), "mine");

    // Training or evaluating into the data set (or a folder inside it) is refused before any work,
    // and the test images are left alone.
    let test_image = std::fs::read(data.join("test").join("r_0.png")).unwrap();
    for out in [data.clone(), data.join("renders")] {
        let output = run(&[
            os("nerf").as_os_str(),
            os("train").as_os_str(),
            os("--steps").as_os_str(),
            os("1").as_os_str(),
            os("--data").as_os_str(),
            data.as_os_str(),
            os("--out").as_os_str(),
            out.as_os_str(),
        ]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success() && stderr.contains("pick another --out"), "{stderr}");
    }
    assert_eq!(std::fs::read(data.join("test").join("r_0.png")).unwrap(), test_image);

    // Output folders: a command writes into a new or empty folder, or its own earlier output; a
    // folder of someone else's files (or another command's output) needs --force.
    let step = |command: &str, out: &std::path::Path, force: bool| {
        let mut args = vec![os("nerf"), os(command), os("--data")];
        args.push(data.clone().into_os_string());
        args.extend([os("--out"), out.as_os_str().to_owned()]);
        args.extend(if command == "train" {
            [os("--steps"), os("1")]
        } else {
            [os("--ckpt"), dir.join("ckpt").into()]
        });
        if force {
            args.push(os("--force"));
        }
        let refs: Vec<&std::ffi::OsStr> = args.iter().map(std::ffi::OsString::as_os_str).collect();
        let output = run(&refs);
        (output.status.success(), String::from_utf8_lossy(&output.stderr).into_owned())
    };
    let ckpt = dir.join("ckpt");
    assert!(step("train", &ckpt, false).0);
    let trained = dir.join("trained");
    assert!(step("train", &trained, false).0);
    assert!(step("train", &trained, false).0, "a command may write over its own earlier output");
    let (ok, stderr) = step("eval", &trained, false);
    assert!(!ok && stderr.contains("output of `sparsefield nerf train`") && stderr.contains("--force"), "{stderr}");
    let mine = dir.join("my_renders");
    std::fs::create_dir_all(&mine).unwrap();
    std::fs::write(mine.join("r_0.png"), "my picture").unwrap();
    let (ok, stderr) = step("eval", &mine, false);
    assert!(!ok && stderr.contains("did not write (r_0.png)") && stderr.contains("--force"), "{stderr}");
    assert_eq!(std::fs::read_to_string(mine.join("r_0.png")).unwrap(), "my picture");
    let (ok, stderr) = step("eval", &mine, true);
    assert!(ok, "{stderr}");
    assert!(image::open(mine.join("r_0.png")).is_ok(), "--force writes into the folder");

    // An INR rendered over its own weights file is refused; the weights stay.
    let inr = dir.join("w.safetensors");
    sparsefield::compute::inr::SirenWeights::init(sparsefield::compute::inr::SirenConfig::image(1, 8, 1, 30.0), 0)
        .save(&inr, &[])
        .unwrap();
    let weights = std::fs::read(&inr).unwrap();
    let output = run(&[
        os("inr").as_os_str(),
        os("render").as_os_str(),
        os("--inr").as_os_str(),
        inr.as_os_str(),
        os("--out").as_os_str(),
        inr.as_os_str(),
    ]);
    assert!(!output.status.success(), "{}", String::from_utf8_lossy(&output.stdout));
    assert_eq!(std::fs::read(&inr).unwrap(), weights);
}
