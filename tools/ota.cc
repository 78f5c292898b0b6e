#include "tools/ota.h"

#include "codecs/codebook_design.h"
#include "record/plot.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>

#include "codecs/count_decoder.h"
#include "codecs/symmetric.h"
#include "splitnets/learner.h"
#include "record/files.h"
#include "record/progress.h"

namespace edgebed {
namespace {
using json = nlohmann::json;

Result<CountData> LoadOrSynthesise(const OtaToolOptions& opt) {
  if (!opt.data.empty()) return LoadCountData(opt.data);
  Rng rng = MakeRng(opt.seed, "synthetic-counts");
  spdlog::info("no --data: synthetic count vectors, Zipf({:g}) popularity over {} codewords, 40 nodes (seed {})", opt.zipf,
               opt.n, opt.seed);
  return SyntheticCountData(opt.n, 40, 30, 2000, opt.zipf, rng);
}

// The training data: LoadOrSynthesise, with 30 synthetic rounds per --mix-zipf exponent mixed in.
Result<CountData> TrainingData(const OtaToolOptions& opt) {
  auto base = LoadOrSynthesise(opt);
  if (!base.ok() || opt.mix_zipf.empty()) return base;
  std::vector<CountData> extra;
  for (double z : opt.mix_zipf) {
    Rng rng = MakeRng(DeriveSeed(opt.seed, "mix-zipf", static_cast<uint64_t>(z * 1000.0)), "synthetic-counts");
    extra.push_back(SyntheticCountData(base->n, 40, 30, 2000, z, rng));
  }
  spdlog::info("mixing in {} synthetic rounds (Zipf exponents {})", 30 * extra.size(), fmt::join(opt.mix_zipf, ", "));
  return MixCountData(std::move(base.value()), std::move(extra));
}

// AMP-DA on the d-length code `opt.code` (default: random), and AMP-DA-Net from `net` when one is named.
Result<std::vector<std::unique_ptr<CountDecoder>>> Decoders(const OtaToolOptions& opt, uint32_t n) {
  std::vector<std::unique_ptr<CountDecoder>> decs;
  AmpDaOptions amp;
  amp.code = opt.code;
  auto amp_da = MakeAmpDa(n, opt.d, opt.seed, amp);
  if (!amp_da.ok()) return amp_da.status();
  decs.push_back(std::move(amp_da).value());
  if (opt.net.empty()) return decs;
  auto net = LoadAmpDaNet(opt.net);
  if (!net.ok()) return net.status();
  if (net.value()->n() != n || net.value()->d() != opt.d)
    return Status::InvalidArgument(opt.net + " decodes n = " + std::to_string(net.value()->n()) + ", d = " +
                                   std::to_string(net.value()->d()) + "; the data has n = " + std::to_string(n) +
                                   " and --d is " + std::to_string(opt.d));
  decs.push_back(std::move(net.value()));
  return decs;
}

// SNR [dB] where a curve (ascending SNR) first falls to `target`, interpolated in log NMSE; NaN if never.
double SnrAt(const std::vector<double>& snr, const std::vector<double>& nmse, double target) {
  for (size_t i = 0; i < snr.size(); ++i) {
    if (nmse[i] > target) continue;
    if (i == 0) return snr[0];
    const double a = std::log10(std::max(nmse[i - 1], 1e-12)), b = std::log10(std::max(nmse[i], 1e-12));
    const double t = std::log10(target);
    return snr[i - 1] + (snr[i] - snr[i - 1]) * (a - t) / (a - b);
  }
  return NAN;
}

}  // namespace

int RunOtaTrain(const OtaToolOptions& opt) {
  auto data = TrainingData(opt);
  if (!data.ok()) {
    spdlog::error("{}", data.status().message());
    return 2;
  }
  size_t vectors = 0;
  for (const auto& r : data->rounds) vectors += r.blocks;
  spdlog::info("training AMP-DA-Net (n {}, d {}, {} layers, {} filters) on {} rounds, {} blocks each of up to {} nodes",
               opt.n, opt.d, opt.layers, opt.filters, data->rounds.size(), vectors / data->rounds.size(),
               data->rounds[0].nodes);
  SetTorchThreads(2);
  AmpDaNetTrainOptions t;
  t.net.n = opt.n;
  t.net.d = opt.d;
  t.net.layers = opt.layers;
  t.net.filters = opt.filters;
  t.net.code = opt.code;
  t.net.seed = opt.seed;
  t.batch = opt.batch;
  t.steps = opt.steps;
  t.max_minutes = opt.minutes;
  t.learning_rate = opt.learning_rate;
  t.ka_min = opt.ka_min;
  t.ka_max = opt.ka_max;
  t.seed = opt.seed;
  t.snr_min_db = opt.snr_min_db;
  t.snr_max_db = opt.snr_max_db;
  t.init_from = opt.init;
  t.log_loss = opt.log_loss;
  t.cosine_decay = opt.cosine;
  t.learn_code = opt.learn_code;
  t.noise_follows_code = opt.noise_follows_code;
  const std::string log_path = opt.out + ".train.csv";
  std::error_code ec;
  if (const auto dir = std::filesystem::path(opt.out).parent_path(); !dir.empty()) std::filesystem::create_directories(dir, ec);
  LineFile log;
  Status log_st = log.Open(log_path, /*append=*/false);
  if (log_st.ok()) log_st = log.Append("step,elapsed_s,loss,val_nmse_5db");
  if (!log_st.ok()) {
    spdlog::error("ota train: the training log: {}", log_st.message());
    return 1;
  }
  const auto t0 = std::chrono::steady_clock::now();
  t.on_progress = [&](uint32_t step, double loss, double nmse) {
    const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    double left = TimeLeft(el, step, opt.steps);
    if (opt.minutes > 0) left = std::min(left < 0 ? 1e18 : left, std::max(0.0, opt.minutes * 60.0 - el));
    spdlog::info("step {:>5}/{}  loss {:.4f}  validation NMSE at 5 dB {:.4f}  {} elapsed, ~{} left", step, opt.steps, loss,
                 nmse, FormatDuration(el), FormatDuration(left));
    if (log_st.ok()) log_st = log.Append(fmt::format("{},{},{},{}", step, el, loss, nmse));
  };
  auto dec = TrainAmpDaNet(data.value(), t);
  if (!dec.ok()) {
    spdlog::error("{}", dec.status().message());
    return 2;
  }
  Status st = dec.value()->Save(opt.out);
  if (!st.ok()) {
    spdlog::error("{}", st.message());
    return 1;
  }
  if (!log_st.ok()) {  // the decoder is saved; its log is not whole
    spdlog::error("ota train: saved {}, but its training log: {}", opt.out, log_st.message());
    return 1;
  }
  spdlog::info("saved {} (training log {})", opt.out, log_path);
  return 0;
}

int RunOtaNmse(const OtaToolOptions& opt) {
  auto data = LoadOrSynthesise(opt);
  if (!data.ok()) {
    spdlog::error("{}", data.status().message());
    return 2;
  }
  SetTorchThreads(2);
  auto loaded = Decoders(opt, data->n);
  if (!loaded.ok()) {
    spdlog::error("{}", loaded.status().message());
    return 2;
  }
  auto& decs = loaded.value();
  for (const auto& dec : decs)
    spdlog::info("{}: code of {} x {}, largest coherence |<c_i, c_k>| {:.3f}", dec->name(), dec->n(), dec->d(),
                 MaxCoherence(dec->codebook(), dec->n(), dec->d()));
  if (opt.from_truth)
    spdlog::info("--from-truth: the MAP search and the Gibbs chain start at the true counts: 'posterior mean' is "
                 "each code's MMSE estimate (what no decoder with that code beats), 'post-processed' the MAP counts near the truth");
  std::vector<size_t> train_rounds, rounds;
  SplitRounds(data.value(), &train_rounds, &rounds);
  const std::string dir = opt.out.empty() ? "runs/ota-nmse" : opt.out;
  std::filesystem::create_directories(dir);
  std::string csv =
      "snr_db,decoder,nmse_counts_raw,nmse_counts,nmse_counts_mean,nmse_aggregate,nmse_aggregate_soft,blocks_exact,"
      "k_hat_correct,blocks,seconds,sum_over_node_snr_db,err_share_one_more_or_less,err_share_one_moved,err_share_other\n";
  const uint32_t n = data->n, group = 250;
  // Groups of 250 blocks cycle through K_a = ka_min..ka_max; other block counts weigh some K_a more
  // (1,000 blocks decode K_a 7..10 only, and the figures look 1.4 dB better).
  const uint32_t cycle = group * (opt.ka_max - opt.ka_min + 1);
  if (opt.blocks % cycle != 0)
    spdlog::warn("--blocks {} is not a multiple of {} (250 blocks for each K_a in {}..{}): the K_a are not decoded "
                 "equally often, and the NMSE is not comparable with runs that are",
                 opt.blocks, cycle, opt.ka_min, opt.ka_max);
  // NMSE of the counts: raw (the decoder's soft output), post-processed (integers), and with
  // --map-refine the posterior mean by Gibbs sampling (else NaN).
  std::map<std::string, std::vector<double>> curve, curve_raw, curve_mean, curve_agg, sum_over_node;
  Progress progress("ota nmse", static_cast<double>(opt.snrs.size()) * opt.blocks, "blocks");
  double blocks_done = 0;
  for (double snr : opt.snrs) {
    Rng rng = MakeRng(opt.seed, "nmse", static_cast<uint64_t>(snr * 100 + 10000));
    struct Acc { double err_by_kind[4] = {}; double power = 0, err_raw = 0, err_mean = 0, err = 0, ref = 0, agg_err = 0, soft_err = 0, agg_ref = 0, exact = 0, khat = 0, secs = 0; };
    std::vector<Acc> acc(decs.size());
    uint32_t groups = 0, total_blocks = 0;
    for (uint32_t done = 0; done < opt.blocks; done += group, ++groups, blocks_done += group) {
      progress.Update(blocks_done, fmt::format("{:g} dB", snr));
      // One group = one simulated round: a round of the data, K_a nodes, `group` blocks. K_a takes
      // every value of [ka_min, ka_max] in turn, so each is decoded equally often (a random K_a per
      // group moved the figure at 10 dB by 2x between seeds).
      const size_t r = rounds[std::uniform_int_distribution<size_t>(0, rounds.size() - 1)(rng)];
      const uint32_t ka = opt.ka_min + groups % (opt.ka_max - opt.ka_min + 1);
      const CountBatch b = SampleCounts(data.value(), {r}, group, ka, ka, rng);
      const CountRound& cr = data->rounds[r];
      VqCodebook q;
      q.size = n;
      q.block_length = cr.block_length;
      q.centroids = cr.centroids;
      // Unit normal draws shared by both decoders, scaled per block: the SNR is the received power of
      // the block's superposed codewords over the noise power (the AMP-DA-Net paper's definition),
      // or each node's receive power over the noise (--snr-per-node).
      std::vector<float> noise(static_cast<size_t>(group) * opt.d);
      std::normal_distribution<float> g(0.0f, 1.0f);
      for (float& v : noise) v = g(rng);
      const double snr_lin = std::pow(10.0, snr / 10.0);
      // The true aggregate (mean) of each block.
      std::vector<int32_t> xi(b.counts.begin(), b.counts.end());
      std::vector<float> agg_true(static_cast<size_t>(group) * q.block_length), agg(agg_true.size());
      if (Status st = AggregateCounts(q, xi.data(), agg_true.size(), {}, agg_true.data()); !st.ok()) {
        spdlog::error("the true counts' aggregate: {}", st.message());
        return 1;
      }
      total_blocks += group;
      for (size_t k = 0; k < decs.size(); ++k) {
        CountDecoder& dec = *decs[k];
        std::vector<float> y = SuperposeCounts(dec.codebook(), n, opt.d, b.counts, 0.0, rng);
        double noise_var_mean = 0.0;
        for (uint32_t s = 0; s < group; ++s) {
          double power = 1.0 / opt.d;  // one node's codeword per entry
          double sum_power = 0.0;
          for (uint32_t j = 0; j < opt.d; ++j) sum_power += y[s * opt.d + j] * y[s * opt.d + j];
          acc[k].power += sum_power;  // in units of one node's codeword (unit norm)
          if (!opt.snr_per_node) power = sum_power / opt.d;
          const double sd = std::sqrt(power / snr_lin);
          noise_var_mean += power / snr_lin / group;
          for (uint32_t j = 0; j < opt.d; ++j) y[s * opt.d + j] += static_cast<float>(sd) * noise[s * opt.d + j];
        }
        CountProblem p;
        p.y = y.data();
        p.blocks = group;
        p.noise_var = noise_var_mean;
        p.k_max = opt.ka_max;
        p.popularity = cr.popularity.data();
        p.map_refine = opt.map_refine;
        if (opt.from_truth) p.start_counts = xi.data();
        p.seed = DeriveSeed(opt.seed, "ota-nmse-gibbs", groups);
        auto est = dec.Decode(p);
        if (!est.ok()) {
          spdlog::error("{}: {}", dec.name(), est.status().message());
          return 1;
        }
        Acc& a = acc[k];
        a.secs += est->seconds;
        a.khat += est->k_hat == ka;
        for (uint32_t s = 0; s < group; ++s) {
          double block_err = 0.0;
          for (uint32_t i = 0; i < n; ++i) {
            const size_t j = static_cast<size_t>(s) * n + i;
            const double x = b.counts[j];
            a.err_raw += (est->raw[j] - x) * (est->raw[j] - x);
            block_err += (est->counts[j] - x) * (est->counts[j] - x);
            if (!est->mean.empty()) a.err_mean += (est->mean[j] - x) * (est->mean[j] - x);
            a.ref += x * x;
          }
          a.exact += block_err == 0.0;
          a.err += block_err;
          a.err_by_kind[static_cast<int>(ClassifyCountError(&est->counts[size_t(s) * n], &b.counts[size_t(s) * n], n))] += block_err;
        }
        if (Status st = AggregateCounts(q, est->counts.data(), agg.size(), {}, agg.data()); !st.ok()) {
          spdlog::error("{}: the aggregate of its counts: {}", dec.name(), st.message());
          return 1;
        }
        for (size_t i = 0; i < agg.size(); ++i) {
          a.agg_err += (agg[i] - agg_true[i]) * (agg[i] - agg_true[i]);
          a.agg_ref += agg_true[i] * agg_true[i];
        }
        MeanFromSoftCounts(q, est->raw.data(), est->k_hat, agg.size(), agg.data());
        for (size_t i = 0; i < agg.size(); ++i) a.soft_err += (agg[i] - agg_true[i]) * (agg[i] - agg_true[i]);
      }
    }
    for (size_t k = 0; k < decs.size(); ++k) {
      const Acc& a = acc[k];
      const std::string name = decs[k]->name();
      curve[name].push_back(a.err / a.ref);
      curve_raw[name].push_back(a.err_raw / a.ref);
      curve_mean[name].push_back(opt.map_refine ? a.err_mean / a.ref : NAN);
      curve_agg[name].push_back(a.agg_err / a.agg_ref);
      // The received sum's mean power over one node's: what the paper's SNR (of the sum) exceeds each
      // node's by. It depends on the code (its popular codewords' correlations), so two codes compared
      // at the same SNR of the sum face different noise powers; --snr-per-node compares them at the same.
      const double sum_over_node_db = 10.0 * std::log10(a.power / total_blocks);
      sum_over_node[name].push_back(sum_over_node_db);
      // Which error events the integer counts' squared error comes from (ClassifyCountError).
      const double more_less = a.err_by_kind[int(CountError::kOneMoreOrLess)] / std::max(a.err, 1e-300),
                   moved = a.err_by_kind[int(CountError::kOneMoved)] / std::max(a.err, 1e-300),
                   other = a.err_by_kind[int(CountError::kOther)] / std::max(a.err, 1e-300);
      csv += fmt::format("{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}\n", snr, name, a.err_raw / a.ref, a.err / a.ref,
                         curve_mean[name].back(), a.agg_err / a.agg_ref, a.soft_err / a.agg_ref, a.exact / total_blocks,
                         a.khat / groups, total_blocks, a.secs, sum_over_node_db, more_less, moved, other);
      spdlog::info("{:>5.1f} dB  {:<10}  NMSE counts raw {:.2e}  post-processed {:.2e}{}  aggregate {:.2e}  exact blocks "
                   "{:.1f}%  K_hat right {:.0f}%  {:.2f} s  (aggregate from soft counts {:.2e}; sum over one node {:+.2f} dB; "
                   "post-processed error from one count more or less {:.0f}%, one count moved {:.0f}%, other {:.0f}%)",
                   snr, name, a.err_raw / a.ref, a.err / a.ref,
                   opt.map_refine ? fmt::format("  posterior mean {:.2e}", a.err_mean / a.ref) : std::string(),
                   a.agg_err / a.agg_ref, 100.0 * a.exact / total_blocks, 100.0 * a.khat / groups, a.secs,
                   a.soft_err / a.agg_ref, sum_over_node_db, 100 * more_less, 100 * moved, 100 * other);
    }
  }
  progress.Finish(blocks_done);
  if (Status st = WriteFileAtomic(dir + "/nmse.csv", csv); !st.ok()) {
    spdlog::error("{}", st.message());
    return 1;
  }
  json summary = {{"target_nmse", opt.target_nmse}, {"snr", opt.snr_per_node ? "per node" : "of the superposed signal"}, {"snrs", opt.snrs}, {"map_refine", opt.map_refine}, {"from_truth", opt.from_truth}, {"data", opt.data.empty() ? fmt::format("synthetic, Zipf({:g}), n = {}", opt.zipf, opt.n) : opt.data}};
  for (const auto& [name, c] : curve) {
    const auto& raw = curve_raw[name];
    const auto& mean = curve_mean[name];
    summary[name] = {{"nmse_counts_raw", raw}, {"nmse_counts", c}, {"nmse_aggregate", curve_agg[name]},
                     {"snr_at_target_counts_raw", SnrAt(opt.snrs, raw, opt.target_nmse)},
                     {"snr_at_target_counts", SnrAt(opt.snrs, c, opt.target_nmse)},
                     {"snr_at_1e-1_counts_raw", SnrAt(opt.snrs, raw, 1e-1)},
                     {"snr_at_1e-1_counts", SnrAt(opt.snrs, c, 1e-1)},
                     {"snr_at_target_aggregate", SnrAt(opt.snrs, curve_agg[name], opt.target_nmse)},
                     {"sum_over_node_snr_db", sum_over_node[name]}};
    std::string with_mean, with_mean_1e1;
    if (opt.map_refine) {
      const double at_target = SnrAt(opt.snrs, mean, opt.target_nmse), at_1e1 = SnrAt(opt.snrs, mean, 1e-1);
      summary[name]["nmse_counts_mean"] = mean;
      summary[name]["snr_at_target_counts_mean"] = at_target;
      summary[name]["snr_at_1e-1_counts_mean"] = at_1e1;
      with_mean = fmt::format(", {:.1f} dB posterior mean", at_target);
      with_mean_1e1 = fmt::format(", {:.1f} dB posterior mean", at_1e1);
    }
    spdlog::info("{}: counts NMSE {:.0e} reached at {:.1f} dB raw, {:.1f} dB post-processed{}; 1e-1 at {:.1f} dB raw, {:.1f} dB "
                 "post-processed{}", name, opt.target_nmse, SnrAt(opt.snrs, raw, opt.target_nmse),
                 SnrAt(opt.snrs, c, opt.target_nmse), with_mean, SnrAt(opt.snrs, raw, 1e-1), SnrAt(opt.snrs, c, 1e-1),
                 with_mean_1e1);
  }
  if (Status st = WriteFileAtomic(dir + "/nmse.json", summary.dump(2) + "\n"); !st.ok()) {
    spdlog::error("{}", st.message());
    return 1;
  }
  // Plot: NMSE of counts and of the aggregate vs SNR; each decoder's points inline, one data block each.
  {
    std::string g;
    for (const auto& [name, c] : curve) {
      g += "$" + name + " << EOD\n";
      for (size_t i = 0; i < opt.snrs.size() && i < c.size(); ++i)
        g += fmt::format("{} {} {} {}\n", opt.snrs[i], curve_raw[name][i], curve_agg[name][i],
                         opt.map_refine ? curve_mean[name][i] : curve_raw[name][i]);
      g += "EOD\n";
    }
    g += "set terminal pngcairo size 1000,420\nset output " + GnuplotPath(dir + "/nmse.png") +
         "\nset logscale y\nset format y '%.0e'\nset xlabel 'SNR [dB]'\nset grid\nset key top right\n"
         "set multiplot layout 1,2\n";
    for (const char* col : {"2", "3"}) {
      g += std::string("set title '") + (std::string(col) == "2" ? "NMSE of the recovered counts (before rounding)"
                                                                  : "NMSE of the aggregate (mean of rounded counts)") + "'\n";
      std::string sep = "plot ";
      for (const auto& [name, title] : {std::pair<std::string, std::string>{"amp_da", "AMP-DA"}, {"amp_da_net", "AMP-DA-Net"}}) {
        if (!curve.count(name)) continue;
        g += sep + "$" + name + " using 1:" + col + " with linespoints pt 7 title '" + title + "'";
        sep = ", ";
        if (opt.map_refine && std::string(col) == "2")
          g += sep + "$" + name + " using 1:4 with linespoints dt 2 pt 6 title '" + title + ", posterior mean (Gibbs)'";
      }
      g += "\n";
    }
    g += "unset multiplot\n";
    if (Status st = RunGnuplot(g, dir + "/gnuplot.log"); !st.ok()) spdlog::warn("no plot: {}; the CSV is there", st.message());
  }
  spdlog::info("wrote {}/nmse.csv, nmse.json, nmse.png", dir);
  return 0;
}

int RunDecodeBench(const OtaToolOptions& opt, int reps) {
  SetTorchThreads(2);
  const uint32_t n = opt.n, d = opt.d, L = 20;
  const size_t params = 270000, S = NumBlocks(params, L);
  Rng rng = MakeRng(opt.seed, "bench-decode");
  const CountData data = SyntheticCountData(n, 40, 1, static_cast<uint32_t>(S), 1.1, rng);
  const CountBatch b = SampleCounts(data, {0}, static_cast<uint32_t>(S), 10, 10, rng);
  auto loaded = Decoders(opt, n);
  if (!loaded.ok()) {
    spdlog::error("{}", loaded.status().message());
    return 2;
  }
  auto& decs = loaded.value();
  const double dense = DenseMatmulGflops(2048, 2048, 2048, 5);
  std::printf("decode one round: %zu parameters = %zu blocks of %u, n = %u, d = %u, K_a = 10, 10 dB, 2 threads\n", params,
              S, L, n, d);
  std::printf("dense libtorch matmul 2048^3: %.1f GFLOP/s\n", dense);
  std::printf("%-12s %10s %10s %12s %10s %12s %10s\n", "decoder", "seconds", "iters", "GFLOP", "GFLOP/s", "% of matmul",
              "blocks/s");
  json out = {{"params", params}, {"blocks", S}, {"dense_gflops", dense}};
  for (auto& dec : decs) {
    std::vector<float> y = SuperposeCounts(dec->codebook(), n, d, b.counts, UraNoiseVar(d, 10.0), rng);
    CountProblem p;
    p.y = y.data();
    p.blocks = S;
    p.noise_var = UraNoiseVar(d, 10.0);
    p.k_max = 10;
    p.popularity = data.rounds[0].popularity.data();
    double best = 1e30;
    CountEstimate keep;
    for (int r = 0; r < reps; ++r) {
      auto est = dec->Decode(p);
      if (!est.ok()) {
        spdlog::error("{}", est.status().message());
        return 1;
      }
      if (est->seconds < best) {
        best = est->seconds;
        keep = std::move(est.value());
      }
    }
    const double gflop = keep.flops / 1e9, rate = gflop / best;
    std::printf("%-12s %10.3f %10d %12.2f %10.1f %11.0f%% %10.0f\n", dec->name().c_str(), best, keep.iterations, gflop,
                rate, 100.0 * rate / dense, static_cast<double>(S) / best);
    out[dec->name()] = {{"seconds", best}, {"iterations", keep.iterations}, {"gflop", gflop}, {"gflops", rate},
                        {"share_of_dense", rate / dense}};
  }
  std::printf("%s\n", out.dump().c_str());
  return 0;
}

}  // namespace edgebed
