"""Make the project importable in its virtualenv: `include` (pure core) and `plugins` (Airflow glue).

Airflow puts dags/ and plugins/ on sys.path itself, but not the project root; tests, the CLI, Celery
workers and MLflow model loading need the same imports, so a .pth file is the one place to say it.
"""

from __future__ import annotations

import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    """Write sales_forecast_project.pth into the running interpreter's site-packages."""
    target = Path(sysconfig.get_paths()["purelib"]) / "sales_forecast_project.pth"
    target.write_text(f"{ROOT}\n{ROOT / 'plugins'}\n")
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
