//! A real Slurm cluster on localhost (Debian's slurmctld, slurmd, slurm-client and munge): the
//! README's recipe, `sbatch --array=0-3` running `archsim sweep --shard auto`, merged and
//! compared byte for byte with a local sweep; and a misnumbered array whose failing shard is
//! reported with its index.
//!
//! Everything lives in a temp dir (slurm.conf, state, spool, munge key and socket) on ports
//! picked free, daemons run in the foreground as children of the test and are killed when it
//! ends, however it ends. Without Slurm the test is skipped with a message, unless
//! `ARCHSIM_REQUIRE_SLURM=1` (set by `.ci/run`) makes it required.

use super::sweep::{TINY, temp_dir, tree};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

const DAEMONS: [&str; 3] = ["munged", "slurmctld", "slurmd"];
const CLIENTS: [&str; 4] = ["sbatch", "squeue", "scontrol", "sinfo"];
/// The longest we wait for the cluster to come up or a job array to finish.
const PATIENCE: Duration = Duration::from_secs(120);
const POLL: Duration = Duration::from_millis(100);

/// Written straight to stderr so the message shows even though the test harness captures
/// `eprintln!` of passing tests.
fn say(message: &str) {
    let _ = writeln!(std::io::stderr(), "slurm test: {message}");
}

fn find(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/local/sbin"].map(PathBuf::from))
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// The daemons of a one-node cluster; killed (with any job of ours) when dropped.
struct Cluster {
    dir: PathBuf,
    conf: PathBuf,
    children: Vec<(String, Child)>,
    jobs: Vec<String>,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for job in &self.jobs {
            let _ = self.client("scancel").arg(job).output();
        }
        // slurmd last-in-first-out: it may ignore SIGTERM while it retries registering, so
        // SIGKILL, then reap so no zombie is left behind.
        for (_, child) in self.children.iter_mut().rev() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Cluster {
    fn start(dir: &Path) -> Cluster {
        let munge = dir.join("munge");
        for d in ["state", "spool", "munge"] {
            std::fs::create_dir_all(dir.join(d)).expect("mkdir");
        }
        let key: Vec<u8> = (0..1024u32)
            .map(|i| (archsim::sim::rng::mix64(u64::from(i) ^ std::process::id() as u64)) as u8)
            .collect();
        let key_file = munge.join("munge.key");
        std::fs::write(&key_file, key).expect("munge key");
        set_mode(&key_file, 0o400);
        set_mode(&munge, 0o755);
        let socket = munge.join("munge.sock");
        let user = Command::new("id")
            .arg("-un")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_else(|_| "root".into());
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let d = dir.display();
        let conf_text = format!(
            "ClusterName=archsimtest\n\
             SlurmctldHost=localhost(127.0.0.1)\n\
             SlurmUser={user}\nSlurmdUser={user}\n\
             SlurmctldPort={}\nSlurmdPort={}\n\
             AuthType=auth/munge\nCredType=cred/munge\nAuthInfo=socket={}\n\
             StateSaveLocation={d}/state\nSlurmdSpoolDir={d}/spool\n\
             SlurmctldPidFile={d}/slurmctld.pid\nSlurmdPidFile={d}/slurmd.pid\n\
             SlurmctldLogFile={d}/slurmctld.log\nSlurmdLogFile={d}/slurmd.log\n\
             ProctrackType=proctrack/linuxproc\nTaskPlugin=task/none\n\
             SchedulerType=sched/backfill\n\
             SelectType=select/cons_tres\nSelectTypeParameters=CR_Core\n\
             ReturnToService=2\nMpiDefault=none\nMessageTimeout=10\n\
             JobCompType=jobcomp/none\nJobAcctGatherType=jobacct_gather/none\n\
             NodeName=archsimnode NodeAddr=127.0.0.1 CPUs={cpus} State=UNKNOWN\n\
             PartitionName=debug Nodes=archsimnode Default=YES MaxTime=INFINITE State=UP\n",
            free_port(),
            free_port(),
            socket.display()
        );
        let conf = dir.join("slurm.conf");
        std::fs::write(&conf, conf_text).expect("slurm.conf");
        let mut cluster = Cluster {
            dir: dir.to_path_buf(),
            conf: conf.clone(),
            children: Vec::new(),
            jobs: Vec::new(),
        };
        let m = |f: &str| munge.join(f).display().to_string();
        cluster.spawn(
            "munged",
            &[
                "-F",
                "--force",
                &format!("--socket={}", socket.display()),
                &format!("--key-file={}", key_file.display()),
                &format!("--pid-file={}", m("munged.pid")),
                &format!("--log-file={}", m("munged.log")),
                &format!("--seed-file={}", m("seed")),
            ],
        );
        cluster.wait_for("munge socket", |_: &Cluster| socket.exists());
        let conf_s = conf.display().to_string();
        cluster.spawn("slurmctld", &["-D", "-i", "-f", &conf_s]);
        cluster.spawn("slurmd", &["-D", "-N", "archsimnode", "-f", &conf_s]);
        cluster.wait_for("the node to be idle", |c: &Cluster| {
            c.client("sinfo")
                .args(["-h", "-o", "%T"])
                .output()
                .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("idle"))
        });
        cluster
    }

    fn spawn(&mut self, program: &str, args: &[&str]) {
        let log = std::fs::File::create(self.dir.join(format!("{program}.out"))).expect("log");
        let child = Command::new(find(program).expect("checked before"))
            .args(args)
            .env("SLURM_CONF", &self.conf)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {program}: {e}"));
        self.children.push((program.to_string(), child));
    }

    fn client(&self, program: &str) -> Command {
        let mut c = Command::new(find(program).unwrap_or_else(|| PathBuf::from(program)));
        c.env("SLURM_CONF", &self.conf).stdin(Stdio::null());
        c
    }

    /// Poll `ready` until it holds; panics with the daemons' logs after [`PATIENCE`], or at
    /// once if a daemon died.
    fn wait_for(&mut self, what: &str, ready: impl Fn(&Cluster) -> bool) {
        let mut waited = Duration::ZERO;
        while !ready(self) {
            for (name, child) in &mut self.children {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!(
                        "{name} exited ({status}) while waiting for {what}\n{}",
                        self_logs(&self.dir)
                    );
                }
            }
            assert!(
                waited < PATIENCE,
                "gave up waiting {PATIENCE:?} for {what}\n{}",
                self_logs(&self.dir)
            );
            std::thread::sleep(POLL);
            waited += POLL;
        }
    }

    /// Submit `script` as an array job; returns the job id.
    fn sbatch(&mut self, array: &str, script: &Path, cwd: &Path) -> String {
        let o = self
            .client("sbatch")
            .args(["--parsable", &format!("--array={array}")])
            .arg(script)
            .current_dir(cwd)
            .output()
            .expect("sbatch runs");
        assert!(o.status.success(), "sbatch failed: {}", text(&o));
        let id = String::from_utf8_lossy(&o.stdout)
            .trim()
            .split(';')
            .next()
            .unwrap_or_default()
            .to_string();
        self.jobs.push(id.clone());
        id
    }

    /// Wait for every task of `job` to finish; returns (task index, state, exit code) per task.
    fn finish(&mut self, job: &str) -> Vec<(usize, String, String)> {
        let job = job.to_string();
        self.wait_for(&format!("job array {job}"), |c: &Cluster| {
            c.client("squeue")
                .args(["-h", "-j", &job])
                .output()
                .is_ok_and(|o| o.status.success() && o.stdout.iter().all(u8::is_ascii_whitespace))
        });
        let o = self
            .client("scontrol")
            .args(["-o", "show", "job", &job])
            .output()
            .expect("scontrol runs");
        let mut tasks: Vec<(usize, String, String)> = String::from_utf8_lossy(&o.stdout)
            .lines()
            .filter_map(|line| {
                let field = |k: &str| {
                    line.split_whitespace()
                        .find_map(|w| w.strip_prefix(&format!("{k}=")).map(str::to_string))
                };
                Some((
                    field("ArrayTaskId")?.parse().ok()?,
                    field("JobState")?,
                    field("ExitCode")?,
                ))
            })
            .collect();
        tasks.sort();
        tasks
    }
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn self_logs(dir: &Path) -> String {
    let mut out = String::new();
    for name in [
        "munged.out",
        "slurmctld.out",
        "slurmd.out",
        "slurmctld.log",
        "slurmd.log",
    ] {
        let body = std::fs::read_to_string(dir.join(name)).unwrap_or_default();
        let tail: Vec<&str> = body.lines().rev().take(15).collect();
        out.push_str(&format!("--- {name} (last lines)\n"));
        for l in tail.into_iter().rev() {
            out.push_str(l);
            out.push('\n');
        }
    }
    out
}

/// The tasks that did not complete, each as "shard I: state, exit code, its output".
fn failed_shards(tasks: &[(usize, String, String)], outputs: &Path) -> Vec<String> {
    tasks
        .iter()
        .filter(|(_, state, code)| state != "COMPLETED" || code != "0:0")
        .map(|(i, state, code)| {
            let out =
                std::fs::read_to_string(outputs.join(format!("slurm-{i}.out"))).unwrap_or_default();
            format!(
                "shard {i}: {state}, exit code {code}; output:\n{}",
                out.trim_end()
            )
        })
        .collect()
}

/// The README's job script ("Running on a cluster"), with this build's archsim.
fn job_script(archsim: &Path, scenario: &str, out: &str) -> String {
    format!(
        "#!/bin/sh\n\
         #SBATCH --job-name=archsim-sweep\n\
         #SBATCH --output={out}/slurm-%a.out\n\
         exec {} sweep {scenario} --shard auto --out {out}\n",
        archsim.display()
    )
}

#[test]
fn slurm_array_shards_merge_into_the_local_sweep_bytes() {
    let required = std::env::var("ARCHSIM_REQUIRE_SLURM").is_ok_and(|v| v == "1");
    let missing: Vec<&str> = DAEMONS
        .iter()
        .chain(&CLIENTS)
        .copied()
        .filter(|p| find(p).is_none())
        .collect();
    if !missing.is_empty() || !is_root() {
        let why = if missing.is_empty() {
            "the daemons need root".to_string()
        } else {
            format!("{} not installed", missing.join(", "))
        };
        assert!(
            !required,
            "ARCHSIM_REQUIRE_SLURM=1 but Slurm cannot run here: {why}; \
             apt-get install slurmctld slurmd slurm-client munge (as root)"
        );
        say(&format!(
            "SKIPPED: {why} (apt-get install slurmctld slurmd slurm-client munge, as root; \
             ARCHSIM_REQUIRE_SLURM=1 makes this test required)"
        ));
        return;
    }
    let dir = temp_dir("slurm");
    let scenario = dir.join("tiny.ron");
    std::fs::write(&scenario, TINY).unwrap();
    let archsim = PathBuf::from(env!("CARGO_BIN_EXE_archsim"));
    let local = dir.join("local");
    let o = Command::new(&archsim)
        .args([
            "sweep",
            scenario.to_str().unwrap(),
            "--out",
            local.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "local sweep: {}", text(&o));

    let mut cluster = Cluster::start(&dir.join("cluster"));
    // The recipe as the README gives it, and the same with a 1-based array (a common slip):
    // its task 4 must fail, be reported with its index, and leave shard 0's runs missing.
    let scenario_s = scenario.display().to_string();
    let ok_script = dir.join("sweep.sbatch");
    std::fs::write(&ok_script, job_script(&archsim, &scenario_s, "shards")).unwrap();
    let bad_script = dir.join("bad.sbatch");
    std::fs::write(&bad_script, job_script(&archsim, &scenario_s, "bad-shards")).unwrap();
    for out in ["shards", "bad-shards"] {
        std::fs::create_dir_all(dir.join(out)).unwrap(); // Slurm opens --output before the job.
    }
    let good = cluster.sbatch("0-3", &ok_script, &dir);
    let bad = cluster.sbatch("1-4", &bad_script, &dir);
    let good_tasks = cluster.finish(&good);
    let bad_tasks = cluster.finish(&bad);
    drop(cluster);

    let failed = failed_shards(&good_tasks, &dir.join("shards"));
    assert!(failed.is_empty(), "failed shards:\n{}", failed.join("\n"));
    assert_eq!(
        good_tasks.iter().map(|t| t.0).collect::<Vec<_>>(),
        [0, 1, 2, 3]
    );
    for i in 0..4 {
        let out = std::fs::read_to_string(dir.join(format!("shards/slurm-{i}.out"))).unwrap();
        assert!(
            out.contains(&format!(
                "shard {i}/4 from Slurm (SLURM_ARRAY_TASK_ID={i}, SLURM_ARRAY_TASK_COUNT=4)"
            )),
            "shard {i} did not say where its index came from:\n{out}"
        );
    }
    let merged = dir.join("merged");
    let o = Command::new(&archsim)
        .args(["merge", dir.join("shards").to_str().unwrap()])
        .args(["--out", merged.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "merge: {}", text(&o));
    assert!(
        tree(&merged) == tree(&local),
        "Slurm shards merged differ from the local sweep"
    );

    let bad_failed = failed_shards(&bad_tasks, &dir.join("bad-shards"));
    assert_eq!(bad_failed.len(), 1, "{bad_failed:?}");
    assert!(
        bad_failed[0].starts_with("shard 4: FAILED, exit code 2:0")
            && bad_failed[0].contains("shard index 4 is out of range for 4 shards"),
        "{}",
        bad_failed[0]
    );
    let o = Command::new(&archsim)
        .args(["merge", dir.join("bad-shards").to_str().unwrap()])
        .args(["--out", dir.join("bad-merged").to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("5 of 18 runs missing: 0 (rr:0:0), 4 (rr:1:1)"),
        "{}",
        text(&o)
    );
    let _ = std::fs::remove_dir_all(&dir);
}
