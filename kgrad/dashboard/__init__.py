"""The Gradients tab: kgrad's own TensorBoard dashboard.

A TensorBoard dynamic plugin registered through the `tensorboard_plugins`
entry point, so `tensorboard --logdir logs` shows a **Gradients** tab next to
Scalars and Histograms once kgrad is installed. Its parts:

- `loader.py`: the `TBLoader` TensorBoard imports at start-up (light: it
  imports the plugin only when TensorBoard loads it).
- `plugin.py`: the plugin and its HTTP routes.
- `series.py`: reads what kgrad wrote through `context.data_provider`.
- `timeline.py`: the findings records (`kgrad.findings_record`) for the tab.
- `static/`: the ES-module frontend (canvas heat map), served by the plugin.

Tested by `tests/test_dashboard_routes.py` and `tests/test_dashboard_browser.py`.

Example:

```bash
tensorboard --logdir logs   # then open the Gradients tab
```
"""
