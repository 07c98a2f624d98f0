"""Data sets: formula data, CSV files, and (from the variant issues) time-series and operator generators."""

from .formulas import make_dataset, parse_formula, parse_ranges
from .operators import antiderivative_operator, heat_operator, sine_wave_operator
from .tabular import load_csv_dataset, read_csv, split_train_test
from .timeseries import (SeriesScaler, TimeSeries, chronological_split, mackey_glass, mackey_glass_series,
                         make_forecasting_data, make_multivariate_series, make_windows)

__all__ = ["make_dataset", "parse_formula", "parse_ranges", "load_csv_dataset", "read_csv", "split_train_test",
           "sine_wave_operator", "antiderivative_operator", "heat_operator",
           "TimeSeries", "SeriesScaler", "make_multivariate_series", "mackey_glass", "mackey_glass_series",
           "make_windows", "chronological_split", "make_forecasting_data"]
