"""What the pages share, by role; a package inside pages/ that is not itself a page (app.py's
``st.navigation`` lists the pages one by one).

* ``text``: escaping (``md_escape``), errors as a user sees them, data_editor cells
* ``session``: the operator's settings, who signed in (``person``, ``read_only``), the workspace
  (of the person, or of the URL), the open dataset, the sidebar
* ``state``: the open dataset's ``DatasetState``, loaded once per rerun, saved after a change
* ``widgets``: the sidebar's settings -> ``PipelineConfig`` (defaults from ``PipelineConfig()``,
  choices from the registries)
* ``runbox``: the live status box of a run, language-model access, what a run says afterwards

Pages call them through this module (``from pages import ui; ui.workspace()``). A test that
patches a helper patches the module that looks it up (``runbox.runtime``, not ``ui.runtime``),
which is why those hooks are not re-exported here.
"""

from .downloads import download, file_stem
from .runbox import (
    STAGE_TITLES,
    STAGES,
    run_with_status,
    saved_result,
    show_label_fallbacks,
    show_llm_estimate,
    warm_up,
)
from .session import (
    current_dataset,
    operator,
    own_workspace,
    person,
    read_only,
    require_app,
    select_dataset,
    sidebar,
    signed_out,
    signing_in,
    workspace,
)
from .state import dataset_state, edited, memo, save_settings, save_state, tag, text_column, version
from .text import cell_text, md_escape, page_style, show_error
from .widgets import (
    ABOUT_K,
    BACKENDS,
    LARGEST_SHARE,
    apply_suggestion,
    build_config,
    fix_large_cluster,
    llm_widgets,
    log,
    settings_widgets,
)

# Export builds every download when its page opens; openpyxl takes about 12 s for 50,000 rows of
# 9 columns here (a million would be minutes and gigabytes), so bigger tables get CSV and Parquet
EXCEL_IN_APP_ROWS = 50_000

__all__ = [
    "ABOUT_K",
    "BACKENDS",
    "EXCEL_IN_APP_ROWS",
    "LARGEST_SHARE",
    "STAGES",
    "STAGE_TITLES",
    "apply_suggestion",
    "build_config",
    "cell_text",
    "current_dataset",
    "dataset_state",
    "download",
    "edited",
    "file_stem",
    "fix_large_cluster",
    "llm_widgets",
    "log",
    "md_escape",
    "memo",
    "operator",
    "own_workspace",
    "page_style",
    "person",
    "read_only",
    "require_app",
    "run_with_status",
    "saved_result",
    "save_settings",
    "save_state",
    "select_dataset",
    "settings_widgets",
    "show_error",
    "show_label_fallbacks",
    "show_llm_estimate",
    "sidebar",
    "signed_out",
    "signing_in",
    "tag",
    "text_column",
    "version",
    "warm_up",
    "workspace",
]
