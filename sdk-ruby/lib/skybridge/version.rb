# frozen_string_literal: true

module Skybridge
  # The gem's version (the API's, from the server's workspace).
  VERSION = "0.1.0"
end
