// The inference copy of a TorchScript model (see engine/src/model/inference.rs): loaded, converted,
// frozen (BatchNorm folded into the convolutions) and, where asked, rewritten by libtorch's
// optimize_for_inference (oneDNN's blocked layout on a CPU). Every C++ exception is caught here and
// returned as a message: none may cross into Rust.
#include <torch/script.h>
#include <torch/csrc/jit/api/module.h>

#include <cstring>
#include <string>

namespace {
char *copy_message(const std::string &s) {
  char *out = static_cast<char *>(std::malloc(s.size() + 1));
  if (out != nullptr) std::memcpy(out, s.c_str(), s.size() + 1);
  return out;
}
}  // namespace

extern "C" {

// Loads `path` on `device` (-1: the CPU, n >= 0: cuda:n), converts its floating-point parameters
// and buffers to bfloat16 when `bf16`, puts 4-D parameters in channels-last layout when
// `channels_last`, freezes it, and runs optimize_for_inference when `optimize`. Returns a module
// the caller frees with iscp_infer_free, or null with *err set (free it with iscp_infer_free_message).
void *iscp_infer_load(const char *path, int device, int bf16, int channels_last, int optimize,
                      char **err) {
  *err = nullptr;
  try {
    c10::Device dev = device < 0 ? c10::Device(c10::kCPU)
                                 : c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(device));
    torch::jit::Module m = torch::jit::load(std::string(path), dev);
    m.eval();
    if (bf16) m.to(at::kBFloat16);
    for (auto p : m.parameters()) {
      p.set_requires_grad(false);
      if (channels_last && p.dim() == 4) {
        p.set_data(p.contiguous(at::MemoryFormat::ChannelsLast));
      }
    }
    torch::jit::Module frozen = torch::jit::freeze(m);
    if (optimize) frozen = torch::jit::optimize_for_inference(frozen);
    return new torch::jit::Module(std::move(frozen));
  } catch (const std::exception &e) {
    *err = copy_message(e.what());
  } catch (...) {
    *err = copy_message("unknown C++ exception");
  }
  return nullptr;
}

// forward(x) without gradients; returns a new tensor handle (a tch tensor takes it over), or null
// with *err set.
void *iscp_infer_forward(void *module, const void *input, char **err) {
  *err = nullptr;
  try {
    auto *m = static_cast<torch::jit::Module *>(module);
    const auto *x = static_cast<const at::Tensor *>(input);
    torch::NoGradGuard no_grad;
    std::vector<torch::jit::IValue> args{*x};
    at::Tensor y = m->forward(args).toTensor();
    return new at::Tensor(std::move(y));
  } catch (const std::exception &e) {
    *err = copy_message(e.what());
  } catch (...) {
    *err = copy_message("unknown C++ exception");
  }
  return nullptr;
}

void iscp_infer_free(void *module) { delete static_cast<torch::jit::Module *>(module); }

void iscp_infer_free_message(char *message) { std::free(message); }
}
