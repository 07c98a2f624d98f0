"""Data sets: formula data, CSV files, and (from the variant issues) time-series and operator generators."""

from .formulas import make_dataset, parse_formula, parse_ranges
from .operators import antiderivative_operator, heat_operator, sine_wave_operator
from .tabular import load_csv_dataset, read_csv, split_train_test

__all__ = ["make_dataset", "parse_formula", "parse_ranges", "load_csv_dataset", "read_csv", "split_train_test"]
__all__ += ["sine_wave_operator", "antiderivative_operator", "heat_operator"]
