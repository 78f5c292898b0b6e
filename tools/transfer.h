// `edgebed transfer ...`: transfer learning outside a federation.
//   transfer pretrain --classes 0-4 --out backbone.pt   train an IRB network from scratch, keep its backbone
//   transfer compare  --backbone backbone.pt            MobileTL vs full fine-tuning of the same blocks vs a
//                                                       linear probe on other classes: accuracy, memory, FLOPs, time
// and `edgebed bench mobiletl`: bytes each IRB keeps for backward, measured beside the analytic count.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace edgebed {

struct TransferToolOptions {
  std::string model = "irbnet";
  std::string classes;          // pretrain: "0-4"; compare: "5-9"
  std::string backbone;         // compare: the pretrained backbone
  std::string out;              // pretrain: backbone file; compare: output folder
  std::string modes = "mobiletl,full,linear";
  int blocks = 2;
  int epochs = 3;
  int batch = 32;
  double learning_rate = 0.05, momentum = 0.9;
  uint32_t train_limit = 0;     // compare: training samples of the target classes (0 = all)
  uint64_t seed = 1;
  int threads = 2;
};

int RunPretrain(const TransferToolOptions& opt);
int RunTransferCompare(const TransferToolOptions& opt);
int RunMobileTlBench(int batch);

}  // namespace edgebed
