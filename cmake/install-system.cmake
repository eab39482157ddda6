# install-system.cmake - run by `cmake --install` (install(SCRIPT)): the files
# whose place and content depend on the prefix chosen at install time
# (`--prefix`, `make install PREFIX=...`), and on DESTDIR.
#
#   prefix /usr (the Debian package): /lib/systemd/system, /etc
#   any other prefix P:               P/lib/systemd/system, P/etc
#
# The unit's paths (/usr/bin/hubbub, /etc/hubbub, /etc/default, /usr/share)
# are rewritten to the prefix. Config files already there are kept: an
# upgrade must not overwrite an operator's settings.
set(src "${CMAKE_CURRENT_LIST_DIR}/../packaging")
set(prefix "${CMAKE_INSTALL_PREFIX}")
if(prefix STREQUAL "/usr")
  set(etc "/etc")
  set(unitdir "/lib/systemd/system")
else()
  set(etc "${prefix}/etc")
  set(unitdir "${prefix}/lib/systemd/system")
endif()
set(dest "$ENV{DESTDIR}")

file(READ "${src}/hubbub.service" unit)
string(REPLACE "/usr/bin/hubbub" "${prefix}/bin/hubbub" unit "${unit}")
string(REPLACE "/usr/share/doc/hubbub" "${prefix}/share/doc/hubbub" unit "${unit}")
string(REPLACE "/etc/hubbub/" "${etc}/hubbub/" unit "${unit}")
string(REPLACE "/etc/default/hubbub" "${etc}/default/hubbub" unit "${unit}")
message(STATUS "Installing: ${dest}${unitdir}/hubbub.service")
file(WRITE "${dest}${unitdir}/hubbub.service" "${unit}")

foreach(pair "hubbub.json;${etc}/hubbub/hubbub.json" "hubbub.default;${etc}/default/hubbub")
  list(GET pair 0 from)
  list(GET pair 1 to)
  if(EXISTS "${dest}${to}")
    message(STATUS "Keeping: ${dest}${to} (already there)")
  else()
    message(STATUS "Installing: ${dest}${to}")
    get_filename_component(dir "${dest}${to}" DIRECTORY)
    file(MAKE_DIRECTORY "${dir}")
    file(READ "${src}/${from}" text)
    file(WRITE "${dest}${to}" "${text}")
  endif()
endforeach()
