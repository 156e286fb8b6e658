"""Where the network looks: Grad-CAM maps of ``Conv2d_7b_1x1`` (``irv2.explain``, ``irv2 explain``).

``gradcam`` explains a batch for one class per image (each image's top class, an index or a label);
``gradcam_top_k`` each image's k best classes; ``explain`` gives the maps alone. ``overlay`` draws a map over
the module's input image with the class and its probability beneath, and writes it as PNG.
"""

from .._lazy import forwarding, lazy_attributes

__all__ = [
    "LAYER",
    "Explanation",
    "caption",
    "explain",
    "gradcam",
    "gradcam_top_k",
    "render_overlay",
    "write_overlay_png",
]

__getattr__, __dir__ = lazy_attributes(
    __name__,
    {
        "LAYER": ".grad_cam",
        "Explanation": ".grad_cam",
        "gradcam": ".grad_cam",
        "gradcam_top_k": ".grad_cam",
        "caption": ".overlay",
        "render_overlay": ".overlay",
        "write_overlay_png": ".overlay",
    },
    __all__,
)


explain = forwarding(__name__, ".grad_cam", "explain", "Grad-CAM maps of ``Conv2d_7b_1x1`` for a module's images")
