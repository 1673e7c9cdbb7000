//! The `phiwatch` command line. The only place that turns errors into text for
//! humans; everything else is in the library.

// mimalloc: the hot path allocates and frees many short strings per record.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_purge_delay` (same index in its v2 and v3 headers).
const MI_OPTION_PURGE_DELAY: std::ffi::c_int = 15;

/// Freed memory goes back to the OS after this many milliseconds (mimalloc's
/// default is a second): keeps a long replay's peak RSS near what it uses.
/// Measured on a 1 GB replay: 100 ms faults pages back in a third more often
/// (about 3% of CPU); 1 s adds 30-55 MiB of peak RSS. `MIMALLOC_PURGE_DELAY`
/// still overrides it.
const PURGE_DELAY_MS: std::ffi::c_long = 250;

unsafe extern "C" {
    fn mi_option_set(option: std::ffi::c_int, value: std::ffi::c_long);
    #[cfg(test)]
    fn mi_option_get(option: std::ffi::c_int) -> std::ffi::c_long;
}

/// Whether the user set the purge delay: mimalloc reads these variables (the
/// second is the option's older name) at start-up.
fn purge_delay_set_by_user() -> bool {
    ["MIMALLOC_PURGE_DELAY", "MIMALLOC_RESET_DELAY"]
        .iter()
        .any(|v| std::env::var_os(v).is_some())
}

fn tune_allocator() {
    if !purge_delay_set_by_user() {
        // SAFETY: mi_option_set only stores one integer option of the linked
        // mimalloc; the index is the purge delay's (checked by a test).
        unsafe { mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS) }
    }
}

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use phiwatch::config::Config;
use phiwatch::decode::{Format, Mode};
use phiwatch::detect::Detector;
use phiwatch::pipeline::{DEFAULT_MAX_RECORD_BYTES, Engine, EngineOptions};
use phiwatch::redact::{Key, KeyOrigin};
use phiwatch::replay::{self, Progress, ReplayOptions, Summary};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(
    name = "phiwatch",
    version,
    about = "Find exposed health data (PHI) and leaked credentials in gateway, WAF and egress logs",
    after_help = "Examples:\n  phiwatch replay fixtures/ --out findings\n  phiwatch replay 'logs/2026-*/access.log.gz' --out case-42 --threads 8\n  zcat access.log.gz | phiwatch replay - --out case-42 --format nginx"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Replay log files (folders, globs, .gz, .zst, - for stdin) into DIR.
    #[command(
        after_help = "Examples:\n  phiwatch replay fixtures/ --out findings\n  phiwatch replay /var/log/kong/*.log.gz --out case-42 --threads 8\n  phiwatch replay - --out case-42 --format text < unknown.log\n\nOutput: DIR/findings/, DIR/dead_letter/ (Parquet, zstd), DIR/manifest.jsonl.\nExit status: 0 when the run completed (even with malformed lines), 2 when it could not run."
    )]
    Replay(ReplayArgs),
    /// Consume Kafka topics as a consumer-group member, writing into DIR.
    #[command(
        after_help = "Examples:\n  phiwatch run --brokers kafka:9092 --group phiwatch --topic kong-logs --topic waf-logs --out /data/phiwatch\n  phiwatch run --config /etc/phiwatch/phiwatch.toml --alerts-topic phiwatch-alerts\n\nOffsets are committed only after the Parquet files holding the records are in place.\nSIGTERM/SIGINT: stop fetching, flush, commit, exit 0.\nSecrets from the environment: PHIWATCH_KEY, PHIWATCH_KAFKA_SASL_USERNAME,\nPHIWATCH_KAFKA_SASL_PASSWORD, PHIWATCH_KAFKA_SSL_KEY_PASSWORD."
    )]
    Run(RunArgs),
    /// HIPAA breach risk assessment from a replay or run output folder.
    #[command(
        after_help = "Examples:\n  phiwatch report case-42 --principal partner-7 --from 2026-11-01T00:00:00Z --discovered 2026-11-20\n  phiwatch report case-42 --client-ip 203.0.113.9 --patient-directory patients.csv --format json\n  phiwatch report case-42 --format html > case-42.html\n\nCounts are exact while every hash is kept (up to 16,384 per row), then DataSketches\nHLL estimates with 2-sigma bounds; obligations use the upper bound.\nThe report must run under the same HMAC key as the scan (PHIWATCH_KEY or --key-file)."
    )]
    Report(ReportArgs),
    /// Rules: lint them and run their examples through the full detector.
    #[command(subcommand)]
    Rules(RulesCommand),
    /// Scan stdin lines; print one JSON object per finding (masked values only).
    #[command(
        after_help = "Examples:\n  tail -f /var/log/nginx/access.log | phiwatch scan\n  echo 'GET /fhir/Patient?identifier=http://hl7.org/fhir/sid/us-ssn|123-45-6789' | phiwatch scan\n\nEach finding has the findings columns (source \"-\", source_line = the line number).\nLines of no known format are scanned as plain text."
    )]
    Scan(ScanArgs),
}

#[derive(Subcommand, Debug)]
enum RulesCommand {
    /// Check every rule: ids, patterns, examples and negative examples through the
    /// full detector, anomaly rules through their example sequences.
    #[command(
        after_help = "Examples:\n  phiwatch rules check\n  phiwatch rules check ./my-rules\n\nExit status 1 when a rule fails its checks, 2 when rules cannot be read."
    )]
    Check {
        /// Folder of extra rules to check together with the built-in ones
        /// (anomaly rules in its `anomaly/` subfolder).
        #[arg(value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

#[derive(Args, Debug)]
struct ScanArgs {
    #[command(flatten)]
    common: CommonArgs,
}

#[derive(Args, Debug)]
struct ReportArgs {
    /// Output folder of `replay` or `run`.
    #[arg(value_name = "DIR")]
    dir: PathBuf,
    /// Only this principal (repeat for more).
    #[arg(long = "principal", value_name = "NAME")]
    principals: Vec<String>,
    /// Only this client IP (repeat for more).
    #[arg(long = "client-ip", value_name = "IP")]
    client_ips: Vec<String>,
    /// Only activity at or after this time (RFC 3339).
    #[arg(long, value_name = "RFC3339")]
    from: Option<String>,
    /// Only activity before this time (RFC 3339).
    #[arg(long, value_name = "RFC3339")]
    to: Option<String>,
    /// CSV with a header naming `patient_id` and `state`, for counts by state.
    #[arg(long, value_name = "CSV")]
    patient_directory: Option<PathBuf>,
    /// Date the breach was discovered (deadlines run from it), YYYY-MM-DD.
    #[arg(long, value_name = "DATE")]
    discovered: Option<String>,
    /// Output format.
    #[arg(long, value_name = "md|json|html", default_value = "md")]
    format: String,
    /// File holding the HMAC key as hex (PHIWATCH_KEY overrides).
    #[arg(long, value_name = "FILE")]
    key_file: Option<PathBuf>,
    /// TOML config file (for key_file).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct RunArgs {
    /// Bootstrap servers, HOST:PORT[,...].
    #[arg(long, value_name = "HOST:PORT")]
    brokers: Option<String>,
    /// Consumer group id.
    #[arg(long, value_name = "ID")]
    group: Option<String>,
    /// Topic to consume (repeat for more).
    #[arg(long = "topic", value_name = "NAME")]
    topics: Vec<String>,
    /// Output folder.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Topic that receives OCSF alerts.
    #[arg(long, value_name = "NAME")]
    alerts_topic: Option<String>,
    /// Metrics listen address, or `off` (default 127.0.0.1:9464).
    #[arg(long, value_name = "ADDR")]
    metrics: Option<String>,
    #[command(flatten)]
    common: CommonArgs,
}

#[derive(Args, Debug)]
struct CommonArgs {
    /// TOML config file.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Folder of extra rules (added to, or replacing by id, the built-in rules).
    #[arg(long, value_name = "DIR")]
    rules: Option<PathBuf>,
    /// File holding the HMAC key as hex (PHIWATCH_KEY overrides).
    #[arg(long, value_name = "FILE")]
    key_file: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct ReplayArgs {
    /// Files, folders (recursively), globs, .gz/.zst, or - for stdin.
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<String>,
    /// Output folder.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Worker threads (default: all cores).
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
    /// Force one decoder for every line (default: auto-detect per line); `text`
    /// scans lines of no known format as plain text instead of dead-lettering them.
    #[arg(long, value_name = "NAME")]
    format: Option<String>,
    /// Records longer than this many bytes are dead-lettered (default 1 MiB).
    #[arg(long, value_name = "BYTES")]
    max_record_bytes: Option<usize>,
    /// No progress bar, no summary.
    #[arg(long, short)]
    quiet: bool,
    /// Skip the anomaly rules (cross-event state); inputs are then read in
    /// parallel too.
    #[arg(long)]
    no_anomaly: bool,
    #[command(flatten)]
    common: CommonArgs,
}

fn main() -> ExitCode {
    tune_allocator();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Replay(args) => cmd_replay(args),
        Command::Run(args) => cmd_run(args),
        Command::Report(args) => cmd_report(args),
        Command::Rules(RulesCommand::Check { dir }) => cmd_rules_check(dir.as_deref()),
        Command::Scan(args) => cmd_scan(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("phiwatch: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn load_config(path: Option<&Path>) -> Result<Config> {
    Ok(match path {
        Some(p) => Config::load(p)?,
        None => Config::default(),
    })
}

fn load_key(cli: Option<&Path>, cfg: &Config, quiet: bool) -> Result<Key> {
    let (key, origin) = Key::load(cli.or(cfg.key_file.as_deref()))?;
    if let KeyOrigin::Generated(p) = origin
        && !quiet
    {
        eprintln!(
            "phiwatch: warning: no HMAC key configured; using the generated key in {} (mode 0600). \
             Set PHIWATCH_KEY or --key-file so hashes stay comparable across machines.",
            p.display()
        );
    }
    Ok(key)
}

fn mode_for(format: Option<&str>) -> Result<Mode> {
    Ok(match format {
        None => Mode::Auto,
        Some("text") => Mode::AutoTextFallback,
        Some(name) => Mode::Forced(name.parse::<Format>().map_err(anyhow::Error::msg)?),
    })
}

fn cmd_replay(args: ReplayArgs) -> Result<ExitCode> {
    let cfg = load_config(args.common.config.as_deref())?;
    let key = load_key(args.common.key_file.as_deref(), &cfg, args.quiet)?;
    let rules = args.common.rules.as_deref().or(cfg.rules_dir.as_deref());
    let mut anomaly = if args.no_anomaly {
        None
    } else {
        Some(phiwatch::anomaly::Detector::load(
            &key,
            &cfg.anomaly,
            rules,
        )?)
    };
    let detector = Detector::load(key, rules)?;
    let mode = mode_for(args.format.as_deref().or(cfg.format.as_deref()))?;
    let max_record_bytes = args
        .max_record_bytes
        .or(cfg.replay.max_record_bytes)
        .unwrap_or(DEFAULT_MAX_RECORD_BYTES);
    let engine = Engine::new(
        detector,
        EngineOptions {
            mode,
            max_record_bytes,
            exposure: cfg.exposure.clone(),
            anomaly: anomaly.is_some(),
        },
    );
    let inputs = phiwatch::source::file::expand(&args.paths)?;
    let threads = args
        .threads
        .or(cfg.replay.threads)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    let opts = ReplayOptions {
        out_dir: args.out.clone(),
        threads,
        block_bytes: cfg
            .replay
            .block_bytes
            .unwrap_or(replay::DEFAULT_BLOCK_BYTES),
    };
    let progress = Progress::default();
    let total: u64 = inputs.iter().map(|i| i.size).sum();
    let show_bar = !args.quiet && std::io::stderr().is_terminal();
    let done = std::sync::atomic::AtomicBool::new(false);
    let bar = show_bar.then(|| progress_bar(total));
    let summary = std::thread::scope(|s| {
        if let Some(bar) = bar.clone() {
            let (progress, done) = (&progress, &done);
            s.spawn(move || {
                while !done.load(Ordering::Relaxed) {
                    update_bar(&bar, progress);
                    std::thread::sleep(Duration::from_millis(200));
                }
            });
        }
        let r = replay::replay(&engine, &inputs, &opts, &progress, anomaly.as_mut());
        done.store(true, Ordering::Relaxed);
        r
    });
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let summary = summary.with_context(|| format!("replay into {}", args.out.display()))?;
    if !args.quiet {
        print_summary(&summary, &args.out);
    }
    // Everything is written and the process is about to end: freeing the
    // anomaly rules' per-key state one allocation at a time took ~15 ms at the
    // end of a 256 MB replay; the operating system takes it back at once.
    std::mem::forget(anomaly);
    Ok(ExitCode::SUCCESS)
}

fn cmd_run(args: RunArgs) -> Result<ExitCode> {
    use phiwatch::run::{self, RunOptions};
    let cfg = load_config(args.common.config.as_deref())?;
    let key = load_key(args.common.key_file.as_deref(), &cfg, false)?;
    let rules = args.common.rules.as_deref().or(cfg.rules_dir.as_deref());
    let anomaly = phiwatch::anomaly::Detector::load(&key, &cfg.anomaly, rules)?;
    let detector = Detector::load(key, rules)?;
    let mode = mode_for(cfg.format.as_deref())?;
    let engine = std::sync::Arc::new(Engine::new(
        detector,
        EngineOptions {
            mode,
            max_record_bytes: cfg
                .replay
                .max_record_bytes
                .unwrap_or(DEFAULT_MAX_RECORD_BYTES),
            exposure: cfg.exposure.clone(),
            anomaly: true,
        },
    ));
    let k = &cfg.kafka;
    let brokers = args
        .brokers
        .or_else(|| k.brokers.clone())
        .context("no brokers: pass --brokers HOST:PORT or set kafka.brokers")?;
    let group = args
        .group
        .or_else(|| k.group.clone())
        .context("no consumer group: pass --group ID or set kafka.group")?;
    let topics = if args.topics.is_empty() {
        k.topics.clone()
    } else {
        args.topics
    };
    anyhow::ensure!(
        !topics.is_empty(),
        "no topics: pass --topic NAME or set kafka.topics"
    );
    let out = args
        .out
        .or_else(|| cfg.output.dir.clone())
        .context("no output folder: pass --out DIR or set output.dir")?;
    let mut opts = RunOptions::new(&brokers, &group, topics, out);
    for (t, f) in &k.topic_formats {
        opts.topic_formats
            .insert(t.clone(), f.parse::<Format>().map_err(anyhow::Error::msg)?);
    }
    if let Some(r) = &k.auto_offset_reset {
        opts.auto_offset_reset = r.clone();
    }
    if let Some(v) = k.session_timeout_ms {
        opts.session_timeout_ms = v;
    }
    if let Some(v) = k.max_prefetch_kbytes {
        opts.max_prefetch_kbytes = v;
    }
    opts.overrides = k.overrides.clone();
    for (env, prop) in [
        ("PHIWATCH_KAFKA_SASL_USERNAME", "sasl.username"),
        ("PHIWATCH_KAFKA_SASL_PASSWORD", "sasl.password"),
        ("PHIWATCH_KAFKA_SSL_KEY_PASSWORD", "ssl.key.password"),
    ] {
        if let Ok(v) = std::env::var(env) {
            opts.overrides.insert(prop.to_string(), v);
        }
    }
    opts.dead_letter_topic = k.dead_letter_topic.clone();
    if let Some(v) = cfg.output.roll_bytes {
        opts.roll_bytes = v;
    }
    if let Some(v) = cfg.output.roll_ms {
        opts.roll_ms = v;
    }
    opts.alerts_topic = args.alerts_topic.or_else(|| cfg.alerts.topic.clone());
    if let Some(s) = cfg
        .alerts
        .min_severity
        .as_deref()
        .and_then(phiwatch::finding::Severity::parse)
    {
        opts.min_severity = s;
    }
    if let Some(v) = cfg.alerts.suppress_ms {
        opts.suppress_ms = v;
    }
    let metrics = std::sync::Arc::new(phiwatch::telemetry::Metrics::default());
    let listen = args
        .metrics
        .or_else(|| cfg.metrics.listen.clone())
        .unwrap_or_else(|| "127.0.0.1:9464".to_string());
    let _server = if listen == "off" {
        None
    } else {
        Some(
            phiwatch::telemetry::Server::start(&listen, metrics.clone())
                .with_context(|| format!("metrics endpoint {listen}"))?,
        )
    };
    let shutdown = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, shutdown.clone()).context("signal handler")?;
    }
    eprintln!(
        "phiwatch: consuming {} as group {} from {}",
        opts.topics.join(", "),
        opts.group,
        opts.brokers
    );
    let summary = run::run(engine, &opts, metrics, &shutdown, Some(anomaly))?;
    eprintln!(
        "phiwatch: stopped: {} records, {} findings, {} dead letters, {} files, {} commits",
        summary.stats.records,
        summary.stats.findings(),
        summary.stats.dead_letters,
        summary.files,
        summary.commits
    );
    Ok(ExitCode::SUCCESS)
}

fn cmd_rules_check(dir: Option<&Path>) -> Result<ExitCode> {
    let patterns = phiwatch::detect::check_rules(dir)?;
    println!("{patterns}");
    let anomaly = phiwatch::anomaly::check_sequences_in(dir)?;
    println!("{anomaly}");
    Ok(if patterns.ok() && anomaly.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn cmd_scan(args: ScanArgs) -> Result<ExitCode> {
    let cfg = load_config(args.common.config.as_deref())?;
    let key = load_key(args.common.key_file.as_deref(), &cfg, false)?;
    let rules = args.common.rules.as_deref().or(cfg.rules_dir.as_deref());
    let detector = Detector::load(key, rules)?;
    let stdin = std::io::stdin().lock();
    let stdout = std::io::BufWriter::new(std::io::stdout().lock());
    let stats = phiwatch::detect::scan_lines(stdin, stdout, &detector)?;
    if stats.invalid_utf8 > 0 {
        eprintln!(
            "phiwatch: {} line(s) were not valid UTF-8 and were skipped",
            stats.invalid_utf8
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn cmd_report(args: ReportArgs) -> Result<ExitCode> {
    use phiwatch::report::{self, OutputFormat, ReportOptions};
    let cfg = load_config(args.config.as_deref())?;
    let key = load_key(args.key_file.as_deref(), &cfg, false)?;
    let opts = ReportOptions {
        principals: args.principals,
        client_ips: args.client_ips,
        from: args
            .from
            .as_deref()
            .map(|t| report::parse_time(t, "--from"))
            .transpose()?,
        to: args
            .to
            .as_deref()
            .map(|t| report::parse_time(t, "--to"))
            .transpose()?,
        patient_directory: args.patient_directory,
        discovered: args
            .discovered
            .as_deref()
            .map(report::parse_date)
            .transpose()?,
        format: args
            .format
            .parse::<OutputFormat>()
            .map_err(anyhow::Error::msg)?,
    };
    let text = report::run(&args.dir, &opts, &key)?;
    print!("{text}");
    Ok(ExitCode::SUCCESS)
}

fn progress_bar(total: u64) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(total);
    let style = indicatif::ProgressStyle::with_template(
        "{elapsed_precise} [{bar:30}] {bytes}/{total_bytes} ({bytes_per_sec}, eta {eta}) {msg}",
    )
    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
    .progress_chars("=> ");
    bar.set_style(style);
    bar
}

fn update_bar(bar: &indicatif::ProgressBar, p: &Progress) {
    bar.set_position(p.disk_bytes.load(Ordering::Relaxed));
    let secs = bar.elapsed().as_secs_f64().max(1e-3);
    let events = p.events.load(Ordering::Relaxed);
    bar.set_message(format!(
        "{} events ({:.0}/s), {} findings, {} dead letters",
        events,
        events as f64 / secs,
        p.findings.load(Ordering::Relaxed),
        p.dead_letters.load(Ordering::Relaxed)
    ));
}

fn print_summary(s: &Summary, out: &Path) {
    let st = &s.stats;
    eprintln!(
        "phiwatch: replayed {} input(s): {} records, {:.1} MB in {:.2} s ({:.1} MB/s)",
        s.inputs,
        st.records,
        st.bytes as f64 / 1e6,
        s.elapsed.as_secs_f64(),
        s.mb_per_s()
    );
    let events: Vec<String> = st
        .events_by_format
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    eprintln!("  events by format: {}", or_none(&events));
    let kinds: Vec<String> = st
        .findings_by_kind
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    eprintln!(
        "  findings: {} ({})",
        st.findings(),
        or_none(&kinds).trim_start_matches("none")
    );
    eprintln!("  dead letters: {}", st.dead_letters);
    if let Some(a) = &s.anomaly {
        eprintln!(
            "  anomaly state: {} keys (~{:.0} MiB), {} evicted, {} late accesses",
            a.tracked_keys,
            a.state_bytes as f64 / 1048576.0,
            a.evictions,
            a.late
        );
    }
    eprintln!("  wrote {} file(s) under {}", s.files.len(), out.display());
}

fn or_none(items: &[String]) -> String {
    if items.is_empty() {
        "none".to_string()
    } else {
        items.join(", ")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn purge_delay_option_is_the_one_set() {
        if super::purge_delay_set_by_user() {
            return;
        }
        // SAFETY: reads one integer option of the linked mimalloc.
        let before = unsafe { super::mi_option_get(super::MI_OPTION_PURGE_DELAY) };
        // mimalloc's default purge delay: the index names that option.
        assert_eq!(before, 1000);
        super::tune_allocator();
        // SAFETY: as above.
        let after = unsafe { super::mi_option_get(super::MI_OPTION_PURGE_DELAY) };
        assert_eq!(after, super::PURGE_DELAY_MS);
    }
}
