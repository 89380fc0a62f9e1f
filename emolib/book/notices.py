"""Notices a chapter shows the reader in a rendered box: missing data, a missing model, a run not
shipped yet, a smoke run."""

from __future__ import annotations

from pathlib import Path

from ..pipeline import DEFAULT_MODEL
from ..utils import repo_root
from .runs import recipe_command

__all__ = ["DATA_CHAPTER", "markdown", "show_missing", "show_missing_model", "show_not_shipped", "smoke_note"]

#: The chapter that explains how to get the data (shown when a data set is missing).
DATA_CHAPTER = "02_data.ipynb"


def markdown(text: str):
    """Show ``text`` as rendered Markdown in a notebook (plain text elsewhere)."""
    try:
        from IPython.display import Markdown, display
    except ImportError:  # pragma: no cover - IPython comes with every notebook
        print(text)
        return
    display(Markdown(text))


def show_missing(err: Exception, dataset: str = "The data set", chapter: str = DATA_CHAPTER) -> None:
    """Tell the reader, in a rendered box, that a data set is absent and where to get it.

    Chapters catch :class:`emolib.data.DatasetNotFoundError` and call this instead of
    failing; the cells that need the data are then skipped.
    """
    markdown(
        f"> **{dataset} is not available here, so the cells that need it are skipped.**\n>\n"
        f"> {err}\n>\n"
        f"> The data chapter ([{chapter}]({chapter})) explains how to get it. Set the environment "
        f"variable `EMOLIB_DATA` (or this chapter's `data_root` parameter) to the folder that holds it."
    )


def show_missing_model(err: Exception, name: str = DEFAULT_MODEL, chapter: str = "03b_better_model.ipynb",
                       still: str = "face detection, contrast and the recorded results still show") -> None:
    """Tell the reader, in a rendered box, that the trained model is not shipped, so the emotion
    cells are skipped; ``still`` says what the chapter shows all the same."""
    markdown(
        f"> **The trained model `{name}` is missing, so the cells that read emotions are skipped**"
        + (f" ({still})" if still else "") + f".\n>\n> {err}\n>\n"
        f"> [The chapter that trains it]({chapter}) ships it into `emolib/checkpoints/`; "
        f"or run this chapter with `smoke = True` to see every step work with untrained weights."
    )


def show_not_shipped(name: str, run: dict | None = None, data: str = "$EMOLIB_DATA/fer2013",
                     train_parameter: str | None = "train") -> None:
    """Say, in a rendered box, that run ``name`` has not been shipped yet, and how to train and ship it.

    ``run`` is what :func:`load_run` found: an unfinished run is reported with its number
    of epochs so far, and the reader is told that the curves that follow are from it
    (pass ``None`` where a chapter shows no curves). ``train_parameter`` names the
    chapter's parameter that trains the run from the chapter (``None``: it has none).
    """
    so_far = ""
    if run is not None and run.get("history"):
        planned = (run.get("config") or {}).get("epochs", "?")
        try:
            where = Path(run["path"]).resolve().relative_to(Path(repo_root()).resolve())
        except ValueError:
            where = run["path"]
        so_far = (f" A run is {run['status']} in `{where}/` ({len(run['history'])} of {planned} epochs "
                  f"so far); the curves below are from that **unfinished** run and will change.")
    markdown(
        f"> **The run `{name}` has not been shipped yet**, so its final results are not shown here.{so_far}\n>\n"
        f"> Train it (the command resumes an interrupted run), then ship it; this chapter then reads "
        f"`results/runs/{name}/`:\n>\n"
        f"> ```bash\n> {recipe_command(name, data)}\n"
        f"> emolib export runs/{name} --name {name} --command \"{recipe_command(name, data)}\"\n> ```"
        + (f"\n>\n> or set this chapter's parameter `{train_parameter} = True` to train it from here."
           if train_parameter else "\n>\n> and run this chapter again.")
    )


def smoke_note(text: str = "") -> None:
    """Label what follows as output of a *smoke run* (a few images, a few batches): it shows that the
    code works, and none of its numbers mean anything."""
    markdown("> **Smoke run.** The numbers and curves of this part come from a small sample of images and "
             "at most a few batches of training: they show that the code runs, not how well a model works." +
             (f" {text}" if text else ""))
