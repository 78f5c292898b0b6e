// The edgebed command line: run a federation, or be one of its processes, benchmark, plot.
#include <malloc.h>
#include <signal.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <climits>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "channel/relay.h"
#include "node/node_host.h"
#include "node/node_runtime.h"
#include "scenarios/scenario.h"
#include "record/files.h"
#include "server/server.h"
#include "tools/bench.h"
#include "tools/server_cmd.h"
#include "tools/keys.h"
#include "tools/deploy_cmd.h"
#include "tools/gnn.h"
#include "tools/launcher.h"
#include "tools/ota.h"
#include "tools/split.h"
#include "tools/transfer.h"
#include "codecs/count_decoder.h"
#include "tools/report_cmd.h"
#include "tools/sweep.h"

namespace {

std::string SelfExe(const char* argv0) {
  char buf[PATH_MAX];
  const ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  if (n > 0) return std::string(buf, static_cast<size_t>(n));
  return argv0;
}

edgebed::Result<edgebed::Scenario> Resolve(const std::string& path, const std::vector<std::string>& sets) {
  if (path.empty()) return edgebed::ParseScenario(edgebed::DefaultScenarioText(), sets, "<default scenario>");
  return edgebed::LoadScenario(path, sets);
}

}  // namespace

int main(int argc, char** argv) {
  // Updates are megabytes; keep such buffers in the heap for reuse instead of mapping fresh pages
  // (and taking a page fault per 4 KiB) for every frame.
  mallopt(M_MMAP_THRESHOLD, 256 << 20);
  mallopt(M_TRIM_THRESHOLD, 512 << 20);
  // One heap per thread kept every thread's high-water mark apart (the server's evaluation thread
  // held its own 64 MiB): one heap for the few threads a process runs.
  mallopt(M_ARENA_MAX, 1);
  spdlog::set_pattern("%H:%M:%S.%e %^%l%$ %v");
  CLI::App app{"edgebed: federated and split learning over a simulated wireless uplink\n"
               "A scenario is a TOML file (scenarios/default.toml documents every field); --set section.field=value "
               "overrides one field of it, repeatable, on every command that takes a scenario."};
  app.require_subcommand(1);
  app.option_defaults()->always_capture_default();  // --help shows every option's default (subcommands inherit it)

  std::string scenario_path;
  std::vector<std::string> sets;

  auto* run = app.add_subcommand("run", "run a federation on this machine: a server and N node processes");
  run->add_option("scenario", scenario_path, "scenario file (TOML); none = the embedded default")
      ->check(CLI::ExistingFile);
  run->add_option("--set", sets, "override a field: section.field=value (repeatable)");
  std::string resume_dir;
  run->add_option("--resume", resume_dir, "continue the run in this folder from its last complete round (its "
                  "scenario.toml and checkpoint.bin)")->check(CLI::ExistingDirectory);

  std::string endpoint_file, bind;
  auto* server = app.add_subcommand("server", "be the parameter server of a federation");
  server->add_option("scenario,--scenario", scenario_path, "scenario file; none = the embedded default")
      ->check(CLI::ExistingFile);
  server->add_option("--set", sets, "override a field: section.field=value (repeatable)");
  server->add_option("--bind", bind, "endpoint to listen on, e.g. tcp://0.0.0.0:5555 (overrides server.bind)");
  server->add_option("--endpoint-file", endpoint_file, "write the bound endpoint to this file");
  server->add_option("--resume", resume_dir, "continue the run in this folder from its last complete round (its "
                     "scenario.toml and checkpoint.bin)")->check(CLI::ExistingDirectory);
  edgebed::KeyFlags server_keys, node_keys, host_keys, chan_keys;
  edgebed::AddKeyFlags(server, &server_keys, /*accepts_connections=*/true, /*connects=*/false);

  edgebed::NodeOptions nopt;
  auto* node = app.add_subcommand("node", "be an edge node: join a server and train when asked");
  node->add_option("--connect", nopt.server, "server endpoint, e.g. tcp://10.0.0.1:5555")->required();
  node->add_option("--index", nopt.index, "node index: selects the data partition")->required();
  node->add_option("--id", nopt.node_id, "node identity (default node-<index>)");
  node->add_option("--data-dir", nopt.data_dir, "data folder for data.format fashion-mnist or cifar10 (default: the server's data.dir)");
  node->add_option("--partition", nopt.partition_file,
                   "this node's rows alone, cut by `edgebed partition` (the node then needs no copy of the data set)");
  node->add_option("--state-dir", nopt.state_dir,
                   "keep what the node carries across rounds (digital OTA's error, SCAFFOLD's c_i) in this folder, "
                   "so that it survives a restart of the node (default: memory only)");
  node->add_option("--threads", nopt.threads, "libtorch threads")->check(CLI::Range(1, 256));
  node->add_option("--device", nopt.device, "device description sent at join");
  node->add_option("--peer-bind", nopt.peer_bind, "GNN shards: where to listen for peer shards (default tcp://127.0.0.1:*)");
  edgebed::AddKeyFlags(node, &node_keys, false, true);

  edgebed::BenchOptions bopt;
  auto* bench = app.add_subcommand("bench", "measure: transfer, aggregate, channel, overhead, population, memory (every process of a default run), decode (OTA decoders), mobiletl (backward memory per IRB), slimmable (switching width), train (C++ vs TorchScript vs PyTorch), split (split learning's round, before and after batching the decoder), or all");
  bench->add_option("which", bopt.which, "transfer | aggregate | channel | overhead | population | memory | decode | mobiletl | slimmable | train | split | all "
                    "(floor: what `memory` compares with, a process that only initialises libtorch, ZeroMQ and protobuf; "
                    "limit: one of `overhead`'s plain libtorch processes)")
      ->check(CLI::IsMember({"transfer", "aggregate", "channel", "overhead", "limit", "population", "memory", "floor", "decode", "mobiletl", "slimmable", "train", "split", "all"}));
  std::string train_module = "tests/data/torchscript/cnn.pt", train_script = "tools/bench_train.py";
  bench->add_option("--module", train_module, "'train': the TorchScript cnn (the built-in cnn's layout)")->capture_default_str();
  bench->add_option("--python-script", train_script, "'train': the PyTorch reference script")->capture_default_str();
  int mobiletl_batch = 32;
  bench->add_option("--batch", mobiletl_batch, "'mobiletl': batch size")->check(CLI::Range(1, 4096));
  bench->add_option("--population-rounds", bopt.population_rounds, "rounds for 'population'");
  bench->add_option("--reps", bopt.reps, "repetitions per measurement")->check(CLI::Range(1, 10000));
  bench->add_option("--overhead-rounds", bopt.overhead_rounds, "rounds of the default scenario for 'overhead'");
  bench->add_option("--limit-part", bopt.limit_part, "'limit': which half of the nodes this process trains")
      ->check(CLI::Range(0, 1));
  bench->add_option("--memory-rounds", bopt.memory_rounds, "rounds of the default scenario per uplink for 'memory'")
      ->check(CLI::Range(1, 100000));
  bench->add_option("--split-rounds", bopt.split_rounds, "rounds per variant for 'split'")->check(CLI::Range(1, 1000));
  bench->add_option("--split-scenario", bopt.split_scenario, "the scenario 'split' runs")->capture_default_str();
  bench->add_option("--memory-uplinks", bopt.memory_uplinks, "uplink kinds for 'memory'")
      ->check(CLI::IsMember({"ideal", "digital", "analog_ota", "digital_ota"}));

  std::string relay_server, relay_listen = "tcp://127.0.0.1:0";
  auto* chan = app.add_subcommand("channel", "be the uplink channel between real nodes and the server");
  chan->add_option("scenario,--scenario", scenario_path, "scenario file ([channel] section); none = the default")
      ->check(CLI::ExistingFile);
  chan->add_option("--set", sets, "override a field: section.field=value (repeatable)");
  chan->add_option("--server", relay_server, "the server's endpoint")->required();
  chan->add_option("--listen", relay_listen, "where nodes connect, e.g. tcp://0.0.0.0:5600");
  chan->add_option("--endpoint-file", endpoint_file, "write the bound endpoint to this file");
  edgebed::AddKeyFlags(chan, &chan_keys, true, true);

  edgebed::NodeHostOptions hopt;
  auto* host = app.add_subcommand("nodehost", "host many simulated nodes in this process ([population] of a scenario)");
  host->add_option("scenario,--scenario", scenario_path, "scenario file; none = the embedded default")->check(CLI::ExistingFile);
  host->add_option("--set", sets, "override a field: section.field=value (repeatable)");
  host->add_option("--connect", hopt.server, "server endpoint")->required();
  host->add_option("--first", hopt.first, "index of the first hosted node")->required();
  host->add_option("--count", hopt.count, "number of hosted nodes")->required()->check(CLI::Range(1, 1000000));
  host->add_option("--state-dir", hopt.state_dir,
                   "keep what each hosted node carries across rounds in this folder (<node>.carry), so that it "
                   "survives a restart of the host (default: memory only)");
  host->add_option("--data-dir", hopt.data_dir, "data folder for data.format fashion-mnist or cifar10 (default: the server's data.dir)");
  edgebed::AddKeyFlags(host, &host_keys, false, true);

  std::string keys_dir = "keys";
  std::vector<std::string> key_names;
  auto* keys = app.add_subcommand("keys", "make CURVE key pairs (NAME.key 0600, NAME.pub) and the server's allow-list nodes.allow");
  keys->add_option("names", key_names, "NAME or NAME=LABEL (LABEL: node-3, node-100..node-999, *relay*); 'server' is the "
                   "server's pair, every other goes on the allow-list")->required();
  keys->add_option("--out", keys_dir, "folder for the key files")->capture_default_str();

  edgebed::DeployOptions dopt;
  bool no_follow = false;
  auto* deploy = app.add_subcommand("deploy", "deploy a federation on real machines with Ansible: packages, keys, data "
                                    "partitions, services; then follow the run and fetch its folder");
  deploy->add_option("inventory", dopt.inventory, "cluster inventory (TOML; see examples/cluster.toml)")->required()
      ->check(CLI::ExistingFile);
  deploy->add_flag("--prepare-only", dopt.prepare_only, "check the inventory and prepare the work folder; run no playbook");
  deploy->add_flag("--no-follow", no_follow, "return once the services run; do not follow the run");
  deploy->add_option("--playbook-dir", dopt.playbook_dir, "folder of deploy.yml and fetch.yml (default: the source tree's "
                     "tools/deploy/ansible, else /usr/share/edgebed/ansible)");
  deploy->add_option("--poll-s", dopt.poll_s, "follow: seconds between progress checks")->check(CLI::Range(1.0, 3600.0))
      ->capture_default_str();

  std::string partition_out;
  auto* partition = app.add_subcommand("partition", "cut every node's data partition into its own file (node-K.npz), "
                                       "for `edgebed node --partition`");
  partition->add_option("scenario", scenario_path, "scenario file; none = the embedded default")->check(CLI::ExistingFile);
  partition->add_option("--set", sets, "override a field: section.field=value (repeatable)");
  partition->add_option("--out", partition_out, "folder for the files")->required();

  edgebed::SweepOptions sopt;
  std::string sweep_values;
  auto* sweep = app.add_subcommand("sweep", "run a scenario once per value of a field; compare.html of the runs, a curve per value");
  sweep->add_option("scenario", sopt.scenario_path, "scenario file; none = the embedded default")
      ->check(CLI::ExistingFile);
  sweep->add_option("--field", sopt.field, "the field to sweep, e.g. channel.snr_db")->required();
  sweep->add_option("--values", sweep_values, "comma-separated values, e.g. 0,5,10,20")->required();
  sweep->add_option("--set", sopt.overrides, "override a field in every run (repeatable)");
  sweep->add_option("--out", sopt.out_dir, "output folder (default <output_dir>/sweep-<field>)");
  sweep->add_option("--x", sopt.x, "x axis of the plot: round | virtual_clock_s | elapsed_s");

  edgebed::ReportCommands reports;
  edgebed::AddReportCommands(app, &reports);

  edgebed::OtaToolOptions oopt;
  std::string snr_list;
  auto* ota = app.add_subcommand("ota", "digital OTA decoders outside a federation: train AMP-DA-Net, measure NMSE");
  ota->require_subcommand(1);
  auto* ota_train = ota->add_subcommand("train", "train AMP-DA-Net on count vectors collected by a run (ota.collect)");
  auto* ota_nmse = ota->add_subcommand("nmse", "NMSE of counts and aggregate vs SNR: AMP-DA and AMP-DA-Net on the same counts");
  for (auto* c : {ota_train, ota_nmse}) {
    c->add_option("--data", oopt.data, "count data file (EBCOUNT1); none = synthetic counts (--zipf, --n, --seed)");
    c->add_option("--zipf", oopt.zipf, "synthetic counts: the codewords' Zipf popularity exponent (0 = uniform)")
        ->check(CLI::Range(0.0, 10.0));
    c->add_option("--d", oopt.d, "real channel uses per block")->check(CLI::Range(2, 4096));
    c->add_option("--n", oopt.n, "codebook size (synthetic data)")->check(CLI::Range(2, 65536));
    c->add_option("--seed", oopt.seed, "seed");
    c->add_option("--ka-min", oopt.ka_min, "fewest active nodes")->check(CLI::Range(1, 10000));
    c->add_option("--ka-max", oopt.ka_max, "most active nodes")->check(CLI::Range(1, 10000));
  }
  ota_train->add_option("--out", oopt.out, "decoder file to write")->required();
  ota_train->add_option("--steps", oopt.steps, "training steps at most")->check(CLI::Range(1, 10000000));
  ota_train->add_option("--minutes", oopt.minutes, "stop after this many minutes")->check(CLI::Range(0.01, 10000.0));
  ota_train->add_option("--batch", oopt.batch, "blocks per step")->check(CLI::Range(1, 100000));
  ota_train->add_option("--lr", oopt.learning_rate, "Adam learning rate")->check(CLI::Range(1e-7, 1.0));
  ota_train->add_option("--layers", oopt.layers, "unrolled AMP layers")->check(CLI::Range(1, 100));
  ota_train->add_option("--filters", oopt.filters, "CNN denoiser filters")->check(CLI::Range(1, 1024));
  for (auto [c, whose] : {std::pair{ota_train, "C0 (with --init: replaces the file's code)"}, std::pair{ota_nmse, "AMP-DA's code"}}) {
    c->add_option("--private-dims", oopt.code.private_dims,
                  std::string("the most popular codewords of ") + whose + " get a dimension each, orthogonal to all others")
        ->check(CLI::Range(0, 1023));
    c->add_flag("--low-coherence", oopt.code.low_coherence,
                std::string("the shared codewords of ") + whose + " descended to a small largest coherence (codecs/codebook_design.h)");
    c->add_option("--pairwise-snr", oopt.code.pairwise_snr_db,
                  std::string("then ") + whose + " descended on the union bound of single moved counts at this SNR of the sum [dB]")
        ->check(CLI::Range(-20.0, 60.0));
    c->add_option("--pairwise-zipf", oopt.code.pairwise_zipf, "the Zipf exponent of the popularity that descent assumes")
        ->check(CLI::Range(0.0, 10.0));
    c->add_flag("--pairwise-per-node", oopt.code.pairwise_per_node, "--pairwise-snr is each node's SNR, not the received sum's");
  }
  ota_train->add_option("--mix-zipf", oopt.mix_zipf, "add 30 synthetic rounds per Zipf exponent to the data (e.g. 0.5 1.1 1.5)")->check(CLI::Range(0.0, 10.0));
  ota_train->add_option("--snr-min", oopt.snr_min_db, "lowest training SNR [dB]")->check(CLI::Range(-20.0, 60.0));
  ota_train->add_option("--snr-max", oopt.snr_max_db, "highest training SNR [dB]")->check(CLI::Range(-20.0, 60.0));
  ota_train->add_option("--init", oopt.init, "decoder file to start from (same n, d, layers, filters)")->check(CLI::ExistingFile);
  ota_train->add_flag("--log-loss", oopt.log_loss, "loss = log of the squared error, so every SNR pulls equally");
  ota_train->add_flag("--learn-code", oopt.learn_code, "train C0 too (each codeword free, not only the shared mix W)");
  ota_train->add_flag("--noise-follows-code", oopt.noise_follows_code, "differentiate the noise's scale (each block's power over the SNR), as the authors' training does: the code also learns to lower the superposed signal's power");
  ota_train->add_flag("--cosine", oopt.cosine, "learning rate decays to 1% (cosine) over --steps or --minutes, whichever ends first");
  ota_nmse->add_option("--net", oopt.net, "AMP-DA-Net decoder file (none: AMP-DA only)")->check(CLI::ExistingFile);
  ota_nmse->add_option("--out", oopt.out, "output folder (default runs/ota-nmse)");
  ota_nmse->add_option("--snrs", snr_list, "comma-separated SNRs [dB] (default 0,3,5,10,15,20)");
  ota_nmse->add_option("--blocks", oopt.blocks, "blocks per SNR")->check(CLI::Range(250, 10000000));
  auto* refine = ota_nmse->add_flag("--map-refine", oopt.map_refine, "post-processing ends with a MAP swap search under a Poisson count prior, then estimates the posterior mean by Gibbs sampling (nmse_counts_mean)");
  ota_nmse->add_flag("--from-truth", oopt.from_truth,
                     "the MAP search and the Gibbs chain start at the true counts: the posterior mean is then the code's "
                     "MMSE estimate, a bound on what any decoder with that code reaches")
      ->needs(refine);
  ota_nmse->add_flag("--snr-per-node", oopt.snr_per_node, "SNR of one node's codeword (default: of the received sum, as the paper)");
  ota_nmse->add_option("--target", oopt.target_nmse, "NMSE target whose SNR is reported")->check(CLI::Range(1e-9, 1.0));
  bench->add_option("--net", oopt.net, "'decode': AMP-DA-Net decoder file")->check(CLI::ExistingFile);

  edgebed::TransferToolOptions topt;
  auto* transfer = app.add_subcommand("transfer", "transfer learning outside a federation: pretrain a backbone, compare MobileTL with full fine-tuning and a linear probe");
  transfer->require_subcommand(1);
  auto* tr_pre = transfer->add_subcommand("pretrain", "train an IRB network from scratch on some classes; save its backbone");
  auto* tr_cmp = transfer->add_subcommand("compare", "fine-tune a backbone on other classes: MobileTL, full (same blocks), linear probe");
  for (auto* c : {tr_pre, tr_cmp}) {
    c->add_option("--model", topt.model, "irbnet | irbnet_hs")->check(CLI::IsMember({"irbnet", "irbnet_hs"}));
    c->add_option("--classes", topt.classes, "classes to learn (pretrain default 0-4, compare default 5-9)");
    c->add_option("--epochs", topt.epochs, "epochs")->check(CLI::Range(1, 1000));
    c->add_option("--batch", topt.batch, "batch size")->check(CLI::Range(1, 4096));
    c->add_option("--lr", topt.learning_rate, "SGD step size")->check(CLI::Range(1e-6, 10.0));
    c->add_option("--momentum", topt.momentum, "SGD momentum")->check(CLI::Range(0.0, 0.999));
    c->add_option("--seed", topt.seed, "seed");
    c->add_option("--threads", topt.threads, "libtorch threads")->check(CLI::Range(1, 256));
  }
  tr_pre->add_option("--out", topt.out, "backbone file to write")->required();
  tr_cmp->add_option("--backbone", topt.backbone, "pretrained backbone")->required()->check(CLI::ExistingFile);
  tr_cmp->add_option("--out", topt.out, "output folder (default runs/transfer-compare)");
  tr_cmp->add_option("--modes", topt.modes, "comma-separated: mobiletl, full, linear");
  tr_cmp->add_option("--blocks", topt.blocks, "top IRBs trained")->check(CLI::Range(1, 6));
  tr_cmp->add_option("--train-limit", topt.train_limit, "training samples of the target classes (0 = all)");

  edgebed::SplitToolOptions spopt;
  auto* split = app.add_subcommand("split", "split networks outside a federation");
  split->require_subcommand(1);
  auto* sp_cmp = split->add_subcommand("compare", "slimmable split network (sandwich rule, 8-bit bottleneck) vs the same network unsplit and unquantised: accuracy, bytes, MFLOPs, latency per width");
  sp_cmp->add_option("--epochs", spopt.epochs, "epochs")->check(CLI::Range(1, 1000));
  sp_cmp->add_option("--batch", spopt.batch, "batch size")->check(CLI::Range(1, 4096));
  sp_cmp->add_option("--lr", spopt.learning_rate, "SGD step size")->check(CLI::Range(1e-6, 10.0));
  sp_cmp->add_option("--momentum", spopt.momentum, "SGD momentum")->check(CLI::Range(0.0, 0.999));
  sp_cmp->add_option("--sandwich-random", spopt.sandwich_random, "random widths per step besides the widest and narrowest");
  sp_cmp->add_option("--train-limit", spopt.train_limit, "training samples (0 = all 60,000)");
  sp_cmp->add_option("--test-limit", spopt.test_limit, "test samples (0 = all 10,000)");
  sp_cmp->add_option("--seed", spopt.seed, "seed");
  sp_cmp->add_option("--threads", spopt.threads, "libtorch threads")->check(CLI::Range(1, 256));
  sp_cmp->add_option("--out", spopt.out, "output folder (default runs/split-compare)");

  auto* gnn = app.add_subcommand("gnn", "GNN training outside `edgebed run`: a graph's figures, or full vs GNNPipe vs graph parallelism");
  gnn->require_subcommand(1);
  std::string gnn_write;
  auto* gnn_graph = gnn->add_subcommand("graph", "build the scenario's graph: size, homophily, edge cut and halo of the bfs and random partitions");
  gnn_graph->add_option("scenario", scenario_path, "scenario file (model gnn)")->check(CLI::ExistingFile)->required();
  gnn_graph->add_option("--set", sets, "override a field: section.field=value (repeatable)");
  gnn_graph->add_option("--write", gnn_write, "also write <prefix>.edges/.labels/.features (gnn.graph.kind = edgelist reads them)");
  edgebed::GnnCompareOptions gopt;
  auto* gnn_cmp = gnn->add_subcommand("compare", "train the scenario's GNN in every layout (full reference, pipe, graph) at each depth; a table of accuracy, traffic and epoch time");
  gnn_cmp->add_option("scenario", scenario_path, "scenario file (model gnn)")->check(CLI::ExistingFile)->required();
  gnn_cmp->add_option("--set", sets, "override a field: section.field=value (repeatable)");
  gnn_cmp->add_option("--layers", gopt.layers, "depths to compare (default 8 16)");
  gnn_cmp->add_option("--modes", gopt.modes, "layouts (default full pipe graph; also hybrid)")->check(CLI::IsMember({"full", "pipe", "graph", "hybrid"}));
  gnn_cmp->add_option("--parts", gopt.parts, "shard counts P to compare (default: the scenario's gnn.parts)")->check(CLI::Range(1, 64));
  gnn_cmp->add_option("--link-mbps", gopt.link_mbps, "virtual link rates per device [Mbit/s] (0 = bytes take no time; default: the scenario's gnn.link_mbps)")
      ->check(CLI::Range(0.0, 1e6));
  gnn_cmp->add_option("--out", gopt.out, "output folder (default runs/gnn-compare)");

  auto* show = app.add_subcommand("scenario", "print the resolved scenario (default or a file) and check it");
  show->add_option("scenario", scenario_path, "scenario file")->check(CLI::ExistingFile);
  show->add_option("--set", sets, "override a field: section.field=value (repeatable)");

  std::vector<std::string> help_words;
  auto* help = app.add_subcommand("help", "show the help of edgebed or of a command: edgebed help [COMMAND [SUBCOMMAND]]");
  help->add_option("command", help_words, "the command (and subcommand) to explain");

  CLI11_PARSE(app, argc, argv);

  if (*help) {
    CLI::App* target = &app;
    std::string name = "edgebed";
    for (const auto& word : help_words) {
      try {
        target = target->get_subcommand(word);
        name += " " + word;
      } catch (const CLI::OptionNotFound&) {
        std::cerr << "edgebed help: '" << word << "' is not a command of '" << name << "'; the commands are listed by '"
                  << (name == "edgebed" ? std::string("edgebed help") : "edgebed help" + name.substr(7)) << "'\n";
        return 2;
      }
    }
    // The formatter directly: App::help() would show the help of the parsed subcommand (help itself).
    std::cout << target->get_formatter()->make_help(target, name, CLI::AppFormatMode::Normal);
    return 0;
  }

  if (*keys) return edgebed::RunKeys(keys_dir, key_names);
  if (*deploy) {
    dopt.follow = !no_follow;
    return edgebed::RunDeploy(dopt);
  }
  static std::atomic<bool> node_stop{false};  // nodes and node hosts: SIGTERM/SIGINT leave gracefully
  if (*node || *host) {
    signal(SIGINT, [](int) { node_stop = true; });
    signal(SIGTERM, [](int) { node_stop = true; });
    nopt.stop = hopt.stop = &node_stop;
  }
  // The key files a networked command names, read before it starts; a bad one ends it with code 2.
  auto load_keys = [](const edgebed::KeyFlags& flags, bool accepts, edgebed::CurveOptions* out) {
    auto curve = edgebed::LoadKeyFlags(flags, accepts);
    if (!curve.ok()) spdlog::error("{}", curve.status().message());
    else *out = curve.value();
    return curve.ok();
  };
  if (*node) return load_keys(node_keys, false, &nopt.curve) ? edgebed::RunNode(nopt) : 2;
  if (*tr_pre) return edgebed::RunPretrain(topt);
  if (*tr_cmp) return edgebed::RunTransferCompare(topt);
  if (*bench && bopt.which == "floor") return edgebed::RunMemoryFloor();
  if (*bench && bopt.which == "limit") return edgebed::RunOverheadLimitPart(bopt.limit_part, bopt.overhead_rounds);
  if (*bench && bopt.which == "mobiletl") return edgebed::RunMobileTlBench(mobiletl_batch);
  if (*bench && bopt.which == "slimmable") return edgebed::RunSlimmableBench();
  if (*bench && bopt.which == "train") return edgebed::RunTrainBench(std::min(bopt.reps, 5), train_module, train_script);
  if (*sp_cmp) return edgebed::RunSplitCompare(spopt);
  if (*bench && bopt.which == "decode") {
    if (oopt.net.empty() && std::filesystem::exists(edgebed::DefaultDecoderPath())) oopt.net = edgebed::DefaultDecoderPath();
    if (oopt.net.empty()) spdlog::warn("no AMP-DA-Net decoder (--net, or {}): AMP-DA only", edgebed::DefaultDecoderPath());
    return edgebed::RunDecodeBench(oopt, bopt.reps);
  }
  if (*bench) {
    const int rc = edgebed::RunBench(bopt, SelfExe(argv[0]));
    if (rc != 0 || bopt.which != "all") return rc;
    if (oopt.net.empty() && std::filesystem::exists(edgebed::DefaultDecoderPath())) oopt.net = edgebed::DefaultDecoderPath();
    const int rc2 = edgebed::RunDecodeBench(oopt, bopt.reps < 3 ? bopt.reps : 3);
    const int rc3 = rc2 != 0 ? rc2 : edgebed::RunMobileTlBench(mobiletl_batch);
    const int rc4 = rc3 != 0 ? rc3 : edgebed::RunSlimmableBench();
    return rc4 != 0 ? rc4 : edgebed::RunTrainBench(std::min(bopt.reps, 5), train_module, train_script);
  }
  if (*ota_train) return edgebed::RunOtaTrain(oopt);
  if (*ota_nmse) {
    if (!snr_list.empty()) {
      oopt.snrs.clear();
      std::stringstream ss(snr_list);
      for (std::string v; std::getline(ss, v, ',');)
        if (!v.empty()) oopt.snrs.push_back(std::stod(v));
    }
    return edgebed::RunOtaNmse(oopt);
  }
  if (*sweep) {
    std::stringstream ss(sweep_values);
    for (std::string v; std::getline(ss, v, ',');)
      if (!v.empty()) sopt.values.push_back(v);
    return edgebed::RunSweep(sopt, SelfExe(argv[0]));
  }
  if (const int rc = edgebed::RunReportCommands(reports); rc >= 0) return rc;

  if (!resume_dir.empty() && scenario_path.empty()) {  // a resumed run is the run its folder describes
    scenario_path = resume_dir + "/scenario.toml";
    sets.push_back("output_dir=\"" + resume_dir + "\"");
  }
  auto sc = Resolve(scenario_path, sets);
  if (!sc.ok()) {
    spdlog::error("{}", sc.status().message());
    return 2;
  }
  if (*show) {
    std::cout << sc->ToToml();
    return 0;
  }
  if ((*gnn_graph || *gnn_cmp) && !sc->is_gnn()) {
    spdlog::error("{}: model.name = \"{}\"; edgebed gnn needs a scenario with model.name = \"gnn\"", scenario_path, sc->model);
    return 2;
  }
  if (*partition) return edgebed::RunPartition(sc.value(), partition_out);
  if (*gnn_graph) return edgebed::RunGnnGraphInfo(sc.value(), gnn_write);
  if (*gnn_cmp) return edgebed::RunGnnCompare(sc.value(), gopt, SelfExe(argv[0]));
  if (*run && sc->is_gnn() && sc->gnn.mode == "full") return edgebed::RunGnnReference(sc.value());
  if (*run) return edgebed::RunFederation(sc.value(), SelfExe(argv[0]), !resume_dir.empty());
  if (*host) {
    if (hopt.first + hopt.count > sc->nodes) {
      spdlog::error("--first {} --count {} goes beyond federation.nodes = {}", hopt.first, hopt.count, sc->nodes);
      return 2;
    }
    hopt.seed = sc->seed;
    hopt.profiles = sc->profiles;
    hopt.custom_profiles = sc->custom_profiles;
    hopt.availability.kind = sc->availability;
    hopt.availability.p_off = sc->p_off;
    hopt.availability.p_on = sc->p_on;
    hopt.availability.trace_file = sc->trace_file;
    hopt.num_nodes = sc->nodes;
    if (hopt.data_dir.empty()) hopt.data_dir = sc->data.dir;
    return load_keys(host_keys, false, &hopt.curve) ? edgebed::RunNodeHost(hopt) : 2;
  }
  if (*chan) {
    static std::atomic<bool> stop{false};
    signal(SIGINT, [](int) { stop = true; });
    signal(SIGTERM, [](int) { stop = true; });
    edgebed::RelayOptions ro;
    ro.listen = relay_listen;
    ro.server = relay_server;
    ro.channel = sc->channel;
    ro.num_nodes = sc->nodes;
    ro.seed = sc->seed;
    ro.liveness_timeout_s = sc->liveness_timeout_s;
    ro.max_frame_bytes = sc->max_frame_bytes();
    ro.endpoint_file = endpoint_file;
    ro.stop = &stop;
    return load_keys(chan_keys, true, &ro.curve) ? edgebed::RunRelay(ro) : 2;
  }

  // server
  if (!bind.empty()) sc->bind = bind;
  return edgebed::RunServerCommand(sc.value(), server_keys, resume_dir, endpoint_file);
}
