"""法规问答助手: question answering and drafting over Chinese rule-of-law documents."""

__version__ = "0.1.0"
