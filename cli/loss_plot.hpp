// The loss curve of a training run as a PNG (`lav2 train` writes DIR/loss.png): drawn here into
// an RGB canvas, encoded by stb_image_write (Debian's libstb-dev) in loss_plot.cpp.
#pragma once

#include <string>
#include <vector>

namespace lav2::cli {

/// \brief Draws `losses` (one per step) as a line over a light grid, the y axis labelled with the
/// lowest and highest loss, the x axis with the first and last step, and writes a PNG to `path`.
/// Throws input_error naming the file when it cannot be written; an empty `losses` draws the axes.
void write_loss_png(const std::string& path, const std::vector<float>& losses);

}  // namespace lav2::cli
