"""The `TBLoader` of the Gradients tab, named by kgrad's entry point.

TensorBoard imports this module at start-up for every installed plugin, and
an import error stops it from starting, so it imports nothing but
TensorBoard's own `base_plugin`; the plugin module is imported in `load`.

Tested by `tests/test_dashboard_routes.py`.

Example:

>>> GradientsLoader().load  # doctest: +ELLIPSIS
<bound method GradientsLoader.load of ...>
"""

from tensorboard.plugins import base_plugin


class GradientsLoader(base_plugin.TBLoader):
    """Loads `kgrad.dashboard.plugin.GradientsPlugin` when TensorBoard starts."""

    def load(self, context):
        """Returns the plugin, or `None` (no tab) when it cannot be built.

        Args:
            context: TensorBoard's `TBContext`.

        Returns:
            A `GradientsPlugin`, or `None` when TensorBoard runs without a data
            provider (the plugin reads nothing else).
        """
        if context.data_provider is None:
            return None
        from kgrad.dashboard.plugin import GradientsPlugin

        return GradientsPlugin(context)
